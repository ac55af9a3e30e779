"""Commands on the SIM's identity: sign, provision, read, verify, tls, and the demo of them all."""

import argparse
import json
import os
import sys
import time

from .. import tls
from ..device import Device
from ..errors import UnreadableFileError, UsageError
from ..signing import sign_and_verify
from .command import Command, add_how_many, ca_path, checked_against, devices_cas, target

CA_HELP = "CA certificate (PEM) that must have issued the SIM's certificate"
DEVICES_CA_HELP = "CA certificate (PEM) of the devices"


def _registry(args):
    from ..registry import Registry

    return Registry.of_state(args.state)


# ---- sign ----------------------------------------------------------------------------------------

def _sign_arguments(parser):
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--message", default="hello from safebench", help="text to sign")
    what.add_argument("--hex", type=_hex, help="bytes to sign, in hex")
    parser.add_argument("--ca", help=CA_HELP)


def _hex(text):
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not hex: give pairs of hex digits, e.g. 48656c6c6f") from None


def _sign(args):
    port, _ = target(args)
    message = args.hex if args.hex is not None else args.message.encode()
    ca_cert = devices_cas(args)  # before the board: a CA that is no certificate is refused without touching it
    with Device(port) as dev, checked_against(ca_path(args)):
        dev.connect()
        return {"port": port, **sign_and_verify(dev, message, ca_cert)}


def _say_signed(res):
    return [f"signed by SIM {res['iccid']} key {res['key']}: {res['signature']}",
            f"certificate: {res['subject']} (issued by {res['issuer']})", "signature verified"]


# ---- provision -----------------------------------------------------------------------------------

def _provision_arguments(parser):
    parser.add_argument("--ca", help=CA_HELP)


def _provision(args, rebind=False):
    from ..binding import operator_key
    from ..provision import register_device

    port, _ = target(args)
    ca_cert, registry = devices_cas(args), _registry(args)
    with Device(port) as dev, checked_against(ca_path(args)):
        dev.connect()
        return {"port": port, **register_device(dev, ca_cert, registry, rebind=rebind,
                                                operator=operator_key(args.state))}


def _bind(args):
    return _provision(args, rebind=True)


def _say_registered(res):
    board = f", bound to board {res['board_id']}" if res.get("board_id") else ""
    moved = f" (it was bound to board {res['bound_before']})" if res.get("bound_before") else ""
    lines = [f"registered SIM {res['iccid']}: {res['subject']}, kid {res['kid'][:16]}...{board}{moved}"]
    if res.get("board_binding"):
        lines.append(f"the board keeps the binding, signed by its SIM (generation {res['board_binding']['generation']})")
    return lines


# ---- read | verify -------------------------------------------------------------------------------

def _read_arguments(parser):
    add_how_many(parser, "reading")
    parser.add_argument("--out", help="append the readings to this file (base64 COSE, one per line)")
    parser.add_argument("--ca", help=DEVICES_CA_HELP)


def _read(args):
    """Take signed readings, check each as it arrives and print its verdict, and save them (base64 COSE,
    one per line). The registry remembers what it accepted: a reading counts once."""
    import base64
    import itertools

    from ..readings import check

    port, _ = target(args)
    registry, devices_ca = _registry(args), devices_cas(args)
    accepted, verdicts = registry.accepted(), Verdicts(args)
    out = open(args.out, "a") if args.out else None
    try:
        with Device(port) as dev:
            dev.connect()
            for _ in itertools.count() if args.follow else range(args.count):
                cose = bytes.fromhex(dev.call("reading")["cose"])
                if out:
                    out.write(base64.b64encode(cose).decode() + "\n")
                    out.flush()
                verdicts.add(check(cose, registry, devices_ca, accepted))
    except KeyboardInterrupt:
        if not args.follow:
            raise
    finally:
        registry.save()
        if out:
            out.close()
    return {"port": port, **verdicts.summary(ca_path(args), registry.where)}


def _verify_arguments(parser):
    parser.add_argument("file", help="file of readings (base64 COSE, one per line), or - for stdin")
    parser.add_argument("--ca", help=DEVICES_CA_HELP)


def _verify(args):
    """Check saved readings, each line on its own, printing each verdict as it is checked: signed by a
    registered device, and each device's (epoch, seq) rising through the file, so a reading repeated or
    fed again after newer ones is rejected. Exit status 1 if any is rejected, or none."""
    from ..errors import ReadingError
    from ..readings import check_lines

    registry, devices_ca = _registry(args), devices_cas(args)
    accepted, verdicts = {}, Verdicts(args)  # the file's own order: an audit, not the live stream's memory
    name = "stdin" if args.file == "-" else args.file
    src = sys.stdin.buffer if args.file == "-" else _open_readings(args.file)
    size = os.fstat(src.fileno()).st_size if args.file != "-" else 0
    progress = args.progress if not sys.stdout.isatty() else None  # on a terminal the verdicts show how far
    shown = 0.0
    with src:
        for number, verdict, done in check_lines(src, name, registry, devices_ca, accepted):
            verdicts.add(verdict, line=number)
            if progress and time.monotonic() - shown > 0.25:
                shown = time.monotonic()
                progress(f"verify: {verdicts.progress(done, size)}")
    if not verdicts.count:
        raise ReadingError(f"no readings in {name}: nothing verified")
    return verdicts.summary(ca_path(args), registry.where)


def _open_readings(path):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise UnreadableFileError(f"no file of readings at {path}") from None
    except OSError as e:
        raise UnreadableFileError(f"cannot read the file of readings {path}: {e.strerror}") from None


class Verdicts:  # also `ingest`'s
    """Each verdict printed as it comes (--json: one JSON object a line, flushed), and their tally."""

    def __init__(self, args):
        self.json, self.count, self.failed = args.json, 0, 0

    def add(self, verdict, line=None):
        v = verdict.as_dict() if line is None else {"line": line, **verdict.as_dict()}
        self.count += 1
        self.failed += not verdict.ok
        print(json.dumps(v) if self.json else say_verdict(v), flush=True)

    def progress(self, done, size):
        read = f"{done / 1e6:.1f} of {size / 1e6:.1f} MB, " if size else ""
        return f"{read}{self.count} readings, {self.failed} rejected"

    def summary(self, ca_file, registry_file):
        """The result: its last JSON line with --json (the readings have no `verified` here)."""
        return {"readings": self.count, "failed": self.failed, "ca": str(ca_file), "registry": str(registry_file)}


def say_verdict(v):
    where = f"line {v['line']}: " if "line" in v else ""
    status = "verified" if v["verified"] else f"REJECTED: {v['reason']}"
    if v["seq"] is None and not v["iccid"]:  # not a reading of any known device
        return where + status
    values = ", ".join(f"{x['name']}={x['value']:.2f} {x['unit']}" if isinstance(x["value"], float)
                       else f"{x['name']}={x['value']}" for x in v["values"])
    numbered = f"seq {v['seq']} of epoch {v['epoch']}" if v["seq"] is not None else ""
    dropped = f"({v['dropped']} readings dropped before it by the board's full outbox)" if v.get("dropped") else ""
    return where + " ".join(x for x in (numbered, v["iccid"], values, dropped, f"[{status}]") if x)


def say_summary(res):
    lines = [f"{res['readings'] - res['failed']} of {res['readings']} readings verified"]
    if res["failed"]:
        lines.append(f"checked against the CA at {res['ca']} and the registry {res['registry']}")
    return lines


# ---- tls -----------------------------------------------------------------------------------------

def _tls_arguments(parser):
    parser.add_argument("--connect", metavar="HOST:PORT", help="connect to this server instead of a host test server")
    parser.add_argument("--ca", help="with --connect: CA certificate (PEM) the server must chain to (default: the SIM's)")
    parser.add_argument("--server-name", help="with --connect: name to check the server certificate for (default HOST)")
    parser.add_argument("--suite", choices=list(tls.SUITES),
                        help=f"offer only this cipher suite (default {' and '.join(tls.SUITES)})")
    parser.add_argument("--verify", choices=("firmware", "sim"), default="firmware",
                        help="where the server's signatures are checked (default firmware)")
    parser.add_argument("--data", default="hello from the SIM", help="the line to send")


def _tls(args):
    """A TLS 1.3 session from the board with the SIM's keys: to a host server, or to --connect HOST:PORT."""
    port, _ = target(args)
    suites = [args.suite] if args.suite else list(tls.SUITES)
    data = args.data.encode() + b"\n"
    with Device(port) as dev:
        dev.connect()
        if args.connect:
            try:
                res = tls.connect(dev, args.connect, args.ca, args.server_name, data, suites, args.verify)
            except ValueError as e:
                raise UsageError(str(e)) from None
        else:
            res = tls.echo_with_host(dev, args.state, suites, args.verify, data)
    return {"port": port, **res}


# ---- demo ----------------------------------------------------------------------------------------

def _demo_arguments(parser):
    parser.add_argument("--ca", help="CA certificate (PEM) of a real board's SIM")
    parser.add_argument("--heap", help="heap of the simulated board (default 256K)")


def _demo(args):
    """The demonstration on --board/--port, or on a simulated bench (brought up unless one is running)."""
    from ..demo import run_demo

    if args.port or args.board:
        port, board_type = target(args)
        return run_demo(args, {"port": port, "type": board_type}, ca_path(args))
    return run_demo(args)  # it tells its story as it goes


COMMANDS = (
    Command(("sign",), "have the SIM sign a message; verify it", _sign, _sign_arguments, _say_signed, target=True),
    Command(("provision",), "check the SIM's certificate against the CA and register the device", _provision,
            _provision_arguments, _say_registered, target=True),
    Command(("bind",), "bind the SIM's identity to this board (after you moved the SIM); its readings from any "
                       "other board are rejected", _bind, _provision_arguments, _say_registered, target=True),
    Command(("read",), "take signed readings and check them; exit 1 if any fails", _read, _read_arguments,
            say_summary, target=True, streams=True),
    Command(("verify",), "check saved readings; exit 1 if any fails", _verify, _verify_arguments, say_summary,
            streams=True),
    Command(("tls",), "TLS 1.3 from the board with the SIM's keys, to a host server or --connect", _tls,
            _tls_arguments, tls.say, target=True),
    Command(("demo",), "the whole path, on a simulated bench by default", _demo, _demo_arguments, target=True),
)
