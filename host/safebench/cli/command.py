"""What every command module uses: the Command record, the options commands share, and the board a
command talks to."""

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from ..board_definitions import board_types
from ..errors import UsageError
from ..pki import CA_CERT
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


# ---- options shared by commands ------------------------------------------------------------------

def common_options():
    """--json and --state: given to the program and to every command."""
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: the option may stand before or after the command without one overwriting the other.
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the result as JSON")
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


# ---- the board, the bench and the CA a command uses ----------------------------------------------

def simulated_bench(args):
    return SimulatedBench(args.state)


def target(args, type_required=True):
    """(port, board type) from --board ALIAS, --port/--board-type, or from the running simulated bench."""
    if args.board:
        return _alias(args)
    if args.port:
        if not args.board_type and type_required:
            raise UsageError("--port needs --board-type (one of: " + ", ".join(board_types()) + ")")
        return args.port, args.board_type
    board = simulated_bench(args).board()
    return board["port"], args.board_type or board["type"]


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
    return x509.load_pem_x509_certificate(ca_path(args).read_bytes())
