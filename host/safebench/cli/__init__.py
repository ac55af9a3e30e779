"""The `safebench` command: a table of thin commands over the simulated bench, deploy, device and verify
modules, one module of commands per subject.

Every command returns a dict; `--json` prints it as JSON, otherwise the command's few plain lines. Any
failure is one line on stderr (with `--json`: one JSON object {"error", "type"} on stdout) and a
non-zero exit: 2 for a command line that does not parse, 130 when interrupted, 1 otherwise.
"""

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import traceback

from .. import __version__
from ..errors import SafebenchError, UsageError
from . import board, dashboard, enrolment, identity, lab, mqtt, simulated
from .command import common_options, progress, target_options

GROUPS = {group.name: group for group in (*simulated.GROUPS, *enrolment.GROUPS, *lab.GROUPS)}
COMMANDS = (*simulated.COMMANDS, *board.COMMANDS, *identity.COMMANDS, *mqtt.COMMANDS, *dashboard.COMMANDS, *enrolment.COMMANDS,
            *lab.COMMANDS)  # --help lists them in this order


class _Parser(argparse.ArgumentParser):
    """argparse, except that a usage mistake is raised for main() to report like any error (in one line)."""

    def error(self, message):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def parser():
    """The argparse tree of COMMANDS: each leaf parser knows its Command (as `args.cli_command`)."""
    common, target = common_options(), target_options()
    ap = _Parser(prog="safebench", parents=[common],
                 description="IoT SAFE SIM signing on MicroPython boards, and its test bench.")
    ap.add_argument("--version", action="version", version=f"safebench {__version__}")
    sub = ap.add_subparsers(required=True)  # no dest: a missing command is named by its choices
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
                    required=True)
            leaf = actions[name].add_parser(action, parents=parents, help=command.help)
        command.add_arguments(leaf)
        leaf.set_defaults(cli_command=command)
    return ap


def _terminate(signum, frame):
    raise KeyboardInterrupt  # SIGTERM (e.g. a CI timeout) cleans up like Ctrl-C: the bench goes down


def _fail(as_json, error, message, status):
    """An error as one line on stderr, or with --json as one JSON object on stdout; then exit `status`."""
    if as_json:
        print(json.dumps({"error": message, "type": type(error).__name__}))
    else:
        print(f"safebench: {message}", file=sys.stderr)
    sys.exit(status)


def _run(command, args):
    try:
        with contextlib.ExitStack() as args.held:  # what the command holds until it ends: its board's port
            return command.run(args)
    finally:
        if args.progress:
            args.progress.end()  # before anything else is printed


def main(argv=None):
    signal.signal(signal.SIGTERM, _terminate)
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parser().parse_args(argv)
    except UsageError as e:  # only the parser's: exit status 2, as argparse's own
        _fail("--json" in argv, e, str(e), 2)
    args.json = getattr(args, "json", False)
    args.verbose = getattr(args, "verbose", False)
    args.state = getattr(args, "state", None) or os.environ.get("SAFEBENCH_STATE", ".bench")
    if args.verbose:  # the rig's debug log, not every library's
        logging.basicConfig(stream=sys.stderr, format="%(name)s: %(message)s")
        logging.getLogger("safebench").setLevel(logging.DEBUG)
    args.progress = progress(args)
    command = args.cli_command
    try:
        res = _run(command, args)
    except (SafebenchError, OSError) as e:
        _fail(args.json, e, str(e), 1)
    except KeyboardInterrupt as e:
        _fail(args.json, e, "interrupted", 130)
    except Exception as e:  # a bug: its traceback (on stderr) is what a report needs; --json still gets JSON
        if args.json:
            traceback.print_exc()
            _fail(True, e, f"internal error: {e}", 1)
        raise
    if args.json:
        print(json.dumps(res, indent=None if command.streams else 1))
    else:
        lines = command.say(res)
        with contextlib.suppress(BrokenPipeError):
            if lines:
                print("\n".join(lines))
    if res.get("failed"):  # e.g. `verify`: readings that did not check out
        sys.exit(1)
