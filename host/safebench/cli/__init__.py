"""The `safebench` command: a table of thin commands over the simulated bench, deploy, device and verify
modules, one module of commands per subject.

Every command returns a dict; `--json` prints it as JSON, otherwise the command's few plain lines. Any
failure is one line on stderr and a non-zero exit.
"""

import argparse
import contextlib
import json
import os
import signal
import sys

from ..errors import SafebenchError
from . import board, identity, simulated
from .command import common_options, target_options

GROUPS = {group.name: group for group in simulated.GROUPS}
COMMANDS = (*simulated.COMMANDS, *board.COMMANDS, *identity.COMMANDS)  # --help lists them in this order


def parser():
    """The argparse tree of COMMANDS: each leaf parser knows its Command (as `args.cli_command`)."""
    common, target = common_options(), target_options()
    ap = argparse.ArgumentParser(prog="safebench", parents=[common],
                                 description="IoT SAFE SIM signing on MicroPython boards, and its test bench.")
    sub = ap.add_subparsers(dest="command", required=True)
    actions = {}  # group name -> its subparsers
    for command in COMMANDS:
        parents = [common, target] if command.target else [common]
        if len(command.path) == 1:
            leaf = sub.add_parser(command.path[0], parents=parents, help=command.help)
        else:
            name, action = command.path
            if name not in actions:
                group = GROUPS[name]
                actions[name] = sub.add_parser(name, aliases=list(group.aliases), help=group.help).add_subparsers(
                    dest="action", required=True)
            leaf = actions[name].add_parser(action, parents=parents, help=command.help)
        command.add_arguments(leaf)
        leaf.set_defaults(cli_command=command)
    return ap


def _terminate(signum, frame):
    raise KeyboardInterrupt  # SIGTERM (e.g. a CI timeout) cleans up like Ctrl-C: the bench goes down


def main(argv=None):
    signal.signal(signal.SIGTERM, _terminate)
    args = parser().parse_args(argv)
    args.json = getattr(args, "json", False)
    args.state = getattr(args, "state", None) or os.environ.get("SAFEBENCH_STATE", ".bench")
    command = args.cli_command
    try:
        res = command.run(args)
    except (SafebenchError, OSError) as e:
        print(f"safebench: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("safebench: interrupted", file=sys.stderr)
        sys.exit(130)
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        lines = command.say(res)
        with contextlib.suppress(BrokenPipeError):
            if lines:
                print("\n".join(lines))
    if res.get("failed"):  # e.g. `verify`: readings that did not check out
        sys.exit(1)
