"""What every command module uses: the Command record, the options commands share, and the board a
command talks to."""

import argparse
import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..board_definitions import board_types
from ..errors import UnreadableFileError, UntrustedCertificateError, UsageError
from ..pki import CA_CERT, load_ca_cert
from ..port_lock import PortLock
from ..simulated_bench import SimulatedBench


def _no_arguments(parser):
    pass


def _no_lines(result):
    return []


@dataclass(frozen=True)
class Group:
    """A first word that only gathers commands, as `bench` in `safebench bench up`."""

    name: str
    help: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Command:
    """One `safebench` command: where it sits, its options, what it does and its result in plain words."""

    path: tuple[str, ...]  # ("deploy",), or (group, action) such as ("bench", "up")
    help: str
    run: Callable[[argparse.Namespace], dict]  # --json prints the dict as it is
    add_arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    say: Callable[[dict], list[str]] = _no_lines  # the lines printed without --json
    target: bool = False  # takes the board options: --port, --board-type, --board, --bench-file
    streams: bool = False  # prints records as they come (--json: JSON lines); the result is the last line


# ---- options shared by commands ------------------------------------------------------------------

def common_options():
    """--json, -v and --state: given to the program and to every command."""
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: the option may stand before or after the command without one overwriting the other.
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print the result as JSON (an error too: {\"error\": ..., \"type\": ...})")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="debug log on stderr: serial traffic, RPC requests, the tools run; progress as lines")
    common.add_argument("--state", default=argparse.SUPPRESS,
                        help="the bench's state folder (default $SAFEBENCH_STATE or .bench)")
    return common


def target_options():
    """The board a command talks to (see `target`)."""
    target = argparse.ArgumentParser(add_help=False)
    target.add_argument("--port", help="a board's serial port (default: the simulated bench's board)")
    target.add_argument("--board-type", help="board definition in boards/ (default: from the bench)")
    target.add_argument("--board", metavar="ALIAS", help="a board of the bench file, found by its USB serial number")
    add_bench_file(target)
    return target


def add_bench_file(parser):
    parser.add_argument("--bench-file", "--bench", dest="bench_file", metavar="FILE",
                        help="the bench file (default $SAFEBENCH_BENCH or bench.yaml)")


def add_how_many(parser, verb):
    """--count N (default 1) or --follow, of readings; `verb` says what --follow keeps doing."""
    how_many = parser.add_mutually_exclusive_group()
    how_many.add_argument("--count", type=_count, default=1, help="how many readings (default 1)")
    how_many.add_argument("--follow", action="store_true", help=f"keep {verb} until Ctrl-C")


def _count(text):
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of readings") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"{count}: give 1 or more, or --follow to go on until Ctrl-C")
    return count


# ---- the board, the bench and the CA a command uses ----------------------------------------------

def simulated_bench(args):
    return SimulatedBench(args.state)


def target(args, type_required=True):
    """(port, board type) from --board ALIAS, --port/--board-type, or from the running simulated bench.

    The port is this command's until it ends: a second command on it is refused (see port_lock)."""
    if args.board:
        port, board_type = _alias(args)
    elif args.port:
        if not args.board_type and type_required:
            raise UsageError("--port needs --board-type (one of: " + ", ".join(board_types()) + ")")
        port, board_type = args.port, args.board_type
    else:
        board = simulated_bench(args).board()
        port, board_type = board["port"], args.board_type or board["type"]
    args.held.enter_context(PortLock(port))
    return port, board_type


def _alias(args):
    """--board ALIAS: the port with the alias's USB serial number, its type, and its CA (for --ca)."""
    from .. import bench_file

    if args.port:
        raise UsageError("give --board ALIAS or --port PORT, not both")
    entry, port = bench_file.lookup(args.board, args.bench_file)
    if args.board_type and args.board_type != entry.type:
        raise UsageError(f"--board-type {args.board_type} contradicts the bench file: {args.board} is a {entry.type}")
    args.alias_ca = entry.ca
    return port, entry.type


def ca_path(args):
    """--ca, else the CA of the --board alias, else the simulated bench's CA."""
    ca = args.ca or getattr(args, "alias_ca", None)
    path = Path(ca) if ca else Path(args.state) / "ca" / CA_CERT
    if not path.exists():
        raise UsageError(f"no CA certificate at {path}: give --ca FILE (the CA that issued the SIM's certificate)")
    return path


def ca(args):
    """The CA certificate of ca_path, read and parsed; a file that is none is one line naming it."""
    path = ca_path(args)
    try:
        return load_ca_cert(path)
    except UnreadableFileError as e:
        if args.ca or getattr(args, "alias_ca", None):
            raise UnreadableFileError(f"{e}: give --ca FILE, the PEM certificate of the CA that issued the "
                                      "SIM's certificate") from None
        raise UnreadableFileError(f"{e}: the simulated bench's CA is damaged; restore it, or run "
                                  f"`safebench bench down` and remove {args.state} to start afresh") from None


def devices_cas(args):
    """The CAs a device's certificate may come from: --ca (or the --board alias's), else the simulated bench's:
    its CA and, once the enrolment server has made it, the fleet CA (docs/enrolment.md)."""
    from ..est.fleet import fleet_ca_cert

    given = ca(args)
    fleet = None if args.ca or getattr(args, "alias_ca", None) else fleet_ca_cert(args.state)
    return [given, fleet] if fleet else [given]


@contextlib.contextmanager
def checked_against(ca_file):
    """A certificate the CA at `ca_file` did not issue: the rejection names that CA and what to do."""
    try:
        yield
    except UntrustedCertificateError as e:
        raise UntrustedCertificateError(f"{e}; checked against the CA at {ca_file}: give --ca FILE with the CA "
                                        "that issued the SIM's certificate") from None


# ---- progress on stderr --------------------------------------------------------------------------

class Steps:
    """How far long work is (`steps("deploying file 3 of 34: lib/apdu.mpy")`), on stderr: one line
    redrawn in place on a terminal, one line per step with -v, nothing otherwise. Never on stdout,
    which carries the result (--json)."""

    def __init__(self, stream, in_place):
        self.stream, self.in_place, self.shown = stream, in_place, False

    def __call__(self, text):
        self.stream.write(f"\r\x1b[K{text}" if self.in_place else f"{text}\n")
        self.stream.flush()
        self.shown = True

    def end(self):
        """Clear the redrawn line, so what the command prints afterwards starts clean."""
        if self.in_place and self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def progress(args, stream=None):
    """The Steps this command reports its long work to, or None when they would not be shown."""
    stream = stream or sys.stderr
    tty = stream.isatty()
    if not (tty or args.verbose):
        return None
    return Steps(stream, in_place=tty and not args.verbose)  # -v: log lines interleave with it
