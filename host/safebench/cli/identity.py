"""Commands on the SIM's identity: sign, provision, read, verify, tls, and the demo of them all."""

import sys
from pathlib import Path

from .. import tls
from ..device import Device
from ..errors import UsageError
from ..signing import sign_and_verify
from .command import Command, ca, ca_path, target

CA_HELP = "CA certificate (PEM) that must have issued the SIM's certificate"
DEVICES_CA_HELP = "CA certificate (PEM) of the devices"


def _registry(args):
    from ..readings import Registry

    return Registry(Path(args.state) / "registry.json")


# ---- sign ----------------------------------------------------------------------------------------

def _sign_arguments(parser):
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--message", default="hello from safebench", help="text to sign")
    what.add_argument("--hex", help="bytes to sign, in hex")
    parser.add_argument("--ca", help=CA_HELP)


def _sign(args):
    port, _ = target(args)
    message = bytes.fromhex(args.hex) if args.hex is not None else args.message.encode()
    with Device(port) as dev:
        dev.connect()
        return {"port": port, **sign_and_verify(dev, message, ca(args))}


def _say_signed(res):
    return [f"signed by SIM {res['iccid']} key {res['key']}: {res['signature']}",
            f"certificate: {res['subject']} (issued by {res['issuer']})", "signature verified"]


# ---- provision -----------------------------------------------------------------------------------

def _provision_arguments(parser):
    parser.add_argument("--ca", help=CA_HELP)


def _provision(args):
    from ..provision import register_device

    port, _ = target(args)
    with Device(port) as dev:
        dev.connect()
        return {"port": port, **register_device(dev, ca(args), _registry(args))}


def _say_registered(res):
    return [f"registered SIM {res['iccid']}: {res['subject']}, kid {res['kid'][:16]}..."]


# ---- read | verify -------------------------------------------------------------------------------

def _read_arguments(parser):
    parser.add_argument("--count", type=int, default=1, help="how many readings (default 1)")
    parser.add_argument("--out", help="append the readings to this file (base64 COSE, one per line)")
    parser.add_argument("--ca", help=DEVICES_CA_HELP)


def _read(args):
    """Take signed readings, check each as it arrives, and save them (base64 COSE, one per line)."""
    import base64

    from ..readings import check

    port, _ = target(args)
    registry, devices_ca, verdicts = _registry(args), ca(args), []
    last_seq = registry.last_seq()
    out = open(args.out, "a") if args.out else None
    try:
        with Device(port) as dev:
            dev.connect()
            for _ in range(args.count):
                cose = bytes.fromhex(dev.call("reading")["cose"])
                if out:
                    out.write(base64.b64encode(cose).decode() + "\n")
                    out.flush()
                verdict = check(cose, registry, devices_ca, last_seq)
                verdicts.append(verdict.as_dict())
                if not args.json:  # each as it arrives: say() has nothing left to print
                    print(_say_verdict(verdict.as_dict()), flush=True)
    finally:
        registry.save()
        if out:
            out.close()
    return {"port": port, "readings": verdicts}


def _verify_arguments(parser):
    parser.add_argument("file", help="file of readings (base64 COSE, one per line), or - for stdin")
    parser.add_argument("--ca", help=DEVICES_CA_HELP)


def _verify(args):
    """Check saved readings against the registry; the exit status is 1 if any fails."""
    import base64

    from ..readings import check

    registry, devices_ca, last_seq = _registry(args), ca(args), {}
    src = sys.stdin if args.file == "-" else open(args.file)
    with src:
        verdicts = [check(base64.b64decode(line), registry, devices_ca, last_seq).as_dict()
                    for line in src if line.strip()]
    return {"readings": verdicts, "failed": sum(not v["verified"] for v in verdicts)}


def _say_verdict(v):
    values = ", ".join(f"{x['name']}={x['value']:.2f} {x['unit']}" if isinstance(x["value"], float)
                       else f"{x['name']}={x['value']}" for x in v["values"])
    status = "verified" if v["verified"] else f"REJECTED: {v['reason']}"
    return f"seq {v['seq']} {v['iccid']} {values} [{status}]"


def _say_verdicts(res):
    return [_say_verdict(v) for v in res["readings"]] + [
        f"{len(res['readings']) - res['failed']} of {len(res['readings'])} readings verified"]


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
    parser.add_argument("--heap", default="256K", help="heap of the simulated board (default 256K)")


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
    Command(("read",), "take signed readings and check them", _read, _read_arguments, target=True),
    Command(("verify",), "check saved readings; exit 1 if any fails", _verify, _verify_arguments, _say_verdicts),
    Command(("tls",), "TLS 1.3 from the board with the SIM's keys, to a host server or --connect", _tls,
            _tls_arguments, tls.say, target=True),
    Command(("demo",), "the whole path, on a simulated bench by default", _demo, _demo_arguments, target=True),
)
