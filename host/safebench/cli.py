"""The `safebench` command: a table of thin commands over the bench, deploy, device and verify modules.

Every command returns a dict; `--json` prints it as JSON, otherwise a few plain lines. Any failure is
one line on stderr and a non-zero exit.
"""

import argparse
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

from cryptography import x509

from . import deploy as deploy_mod
from .bench_file import BenchFileError
from .board_definitions import board_types
from .device import Device, DeviceError, RpcError
from .flash import FlashError
from .pki import CA_CERT
from .signing import sign_and_verify
from .simulated_bench import BenchError, SimulatedBench
from .usb_boards import BoardError
from .verify import VerificationError

EXPECTED_ERRORS = (BenchError, DeviceError, RpcError, deploy_mod.DeployError, VerificationError, OSError,
                   BenchFileError, BoardError, FlashError)


class UsageError(Exception):
    pass


# ---- helpers shared by commands ------------------------------------------------------------------

def _bench(args):
    return SimulatedBench(args.state)


def _target(args, type_required=True):
    """(port, board type) from --board ALIAS, --port/--board-type, or from the running simulated bench."""
    if args.board:
        return _alias(args)
    if args.port:
        if not args.board_type and type_required:
            raise UsageError("--port needs --board-type (one of: " + ", ".join(board_types()) + ")")
        return args.port, args.board_type
    board = _bench(args).board()
    return board["port"], args.board_type or board["type"]


def _alias(args):
    """--board ALIAS: the port with the alias's USB serial number, its type, and its CA (for --ca)."""
    from . import bench_file

    if args.port:
        raise UsageError("give --board ALIAS or --port PORT, not both")
    entry, port = bench_file.lookup(args.board, args.bench)
    if args.board_type and args.board_type != entry.type:
        raise UsageError(f"--board-type {args.board_type} contradicts the bench file: {args.board} is a {entry.type}")
    args.alias_ca = entry.ca
    return port, entry.type


def _ca_path(args):
    ca = args.ca or getattr(args, "alias_ca", None)
    path = Path(ca) if ca else Path(args.state) / "ca" / CA_CERT
    if not path.exists():
        raise UsageError(f"no CA certificate at {path}: give --ca FILE (the CA that issued the SIM's certificate)")
    return path


def _ca(args):
    return x509.load_pem_x509_certificate(_ca_path(args).read_bytes())


def _message(args):
    if args.hex is not None:
        return bytes.fromhex(args.hex)
    return args.message.encode()


# ---- commands ------------------------------------------------------------------------------------

def cmd_bench_up(args):
    state = _bench(args).up(heap=args.heap, modem=args.modem, card=args.card, dialect=args.dialect)
    return {"up": True, "boards": state["boards"]}


def cmd_bench_down(args):
    return {"stopped": _bench(args).down()}


def cmd_bench_status(args):
    return _bench(args).status()


def cmd_deploy(args):
    from .provision import bench_board_roles

    port, board_type = _target(args)
    if args.sim_roles:
        roles = json.loads(Path(args.sim_roles).read_text())
    elif not args.port and not getattr(args, "board", None):
        roles = bench_board_roles(_bench(args).board())  # the simulated SIM: its card image says
    else:
        roles = None
    res = deploy_mod.deploy(port, board_type, Path(args.state) / "build" / board_type, roles)
    return {"port": port, "board_type": board_type, **res}


def cmd_info(args):
    port, _ = _target(args)
    with Device(port) as dev:
        info = dev.connect()
        info["sim"] = dev.call("sim.info")
    return {"port": port, **info}


def cmd_sign(args):
    port, _ = _target(args)
    with Device(port) as dev:
        dev.connect()
        return {"port": port, **sign_and_verify(dev, _message(args), _ca(args))}


def _registry(args):
    from .readings import Registry

    return Registry(Path(args.state) / "registry.json")


def cmd_provision(args):
    from .provision import register_device

    port, _ = _target(args)
    with Device(port) as dev:
        dev.connect()
        return {"port": port, **register_device(dev, _ca(args), _registry(args))}


def cmd_read(args):
    """Take signed readings, check each as it arrives, and save them (base64 COSE, one per line)."""
    import base64

    from .readings import check

    port, _ = _target(args)
    registry, ca, verdicts = _registry(args), _ca(args), []
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
                verdict = check(cose, registry, ca, last_seq)
                verdicts.append(verdict.as_dict())
                if not args.json:
                    print(_say_verdict(verdict.as_dict()), flush=True)
    finally:
        registry.save()
        if out:
            out.close()
    return {"port": port, "readings": verdicts}


def cmd_verify(args):
    """Check saved readings against the registry; the exit status is 1 if any fails."""
    import base64

    from .readings import check

    registry, ca, last_seq = _registry(args), _ca(args), {}
    src = sys.stdin if args.file == "-" else open(args.file)
    with src:
        verdicts = [check(base64.b64decode(line), registry, ca, last_seq).as_dict() for line in src if line.strip()]
    return {"readings": verdicts, "failed": sum(not v["verified"] for v in verdicts)}


def _say_verdict(v):
    values = ", ".join(f"{x['name']}={x['value']:.2f} {x['unit']}" if isinstance(x["value"], float)
                       else f"{x['name']}={x['value']}" for x in v["values"])
    status = "verified" if v["verified"] else f"REJECTED: {v['reason']}"
    return f"seq {v['seq']} {v['iccid']} {values} [{status}]"


def cmd_card_new(args):
    """A personalised simulated card image: fresh keys, a client certificate from the CA."""
    from .provision import card_new

    try:
        return card_new(args.out, args.state, args.profile, args.ca_cert, args.ca_key)
    except ValueError as e:  # unknown profile, unreadable CA, existing --out
        raise UsageError(str(e)) from e


def cmd_sim_modem(args):
    """Run the simulated modem and SIM alone, in the foreground (exec: Ctrl-C stops it cleanly)."""
    if not Path(args.card).is_file():
        raise UsageError(f"no card image at {args.card}: make one with `safebench card new --out {args.card}`")
    argv = [sys.executable, "-m", "safebench_simulator.modem", "--card", args.card, "--dialect", args.dialect,
            "--print", "json" if args.json else "port"]
    for option in ("link", "trace", "control", "port", "baud"):
        if getattr(args, option) is not None:
            argv += [f"--{option}", str(getattr(args, option))]
    if args.realtime:
        argv.append("--realtime")
    sys.stdout.flush()
    os.execv(sys.executable, argv)


def cmd_tls(args):
    """A TLS 1.3 session from the board with the SIM's keys: to a host server, or to --connect HOST:PORT."""
    from . import tls

    port, _ = _target(args)
    suites = [args.suite] if args.suite else ["gcm", "ccm"]
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


def cmd_flash(args):
    """Flash MicroPython (esptool for a .bin, the BOOTSEL drive for a .uf2), then deploy the firmware."""
    from . import flash

    port, board_type = _target(args, type_required=False) if args.port or args.board else (None, args.board_type)
    if not port and Path(args.image).suffix.lower() != ".uf2":
        raise UsageError("flash needs --port PORT or --board ALIAS")
    if not args.no_deploy and not board_type:
        raise UsageError("give --board-type (to deploy the firmware after flashing) or --no-deploy")
    try:
        offset = int(args.offset, 0) if args.offset else None
    except ValueError:
        raise UsageError(f"--offset {args.offset}: give a number, e.g. 0x1000") from None
    res = flash.flash(port, args.image, board_type, args.erase, offset, args.volume, args.timeout,
                      progress=not args.json)
    if not args.no_deploy:
        res["deploy"] = deploy_mod.deploy(res["port"], board_type, Path(args.state) / "build" / board_type)
    return res


def cmd_boards(args):
    """Serial ports and the boards behind them (by USB identity; with --probe, as they say themselves)."""
    from . import bench_file
    from . import usb_boards as boards

    found = boards.connected(state_dir=args.state)
    try:
        entries = bench_file.load(args.bench) if args.bench or bench_file.bench_path().exists() else {}
    except BenchFileError:
        if args.bench:
            raise
        entries = {}  # a broken ./bench.yaml should not hide what is connected; --board says why it is broken
    for b in found:
        b["alias"] = bench_file.alias_of(entries, b)
        if args.probe and (b["simulated"] or b["family"] in ("esp32", "rp2", "usb-uart")):
            b["probe"] = boards.probe(b["port"])
            b.setdefault("board_type", (b["probe"].get("firmware") or {}).get("board_type"))
    res = {"boards": found, "not_connected": sorted(set(entries) - {b["alias"] for b in found})}
    if args.write_bench:
        res.update(bench_file.draft(found, args.write_bench))
    return res


def cmd_reset(args):
    from . import usb_boards as boards

    port, board_type = _target(args, type_required=False)
    return boards.reset(port, board_type)


def cmd_demo(args):
    """The demonstration on --board/--port, or on a simulated bench (brought up unless one is running)."""
    from .demo import run_demo

    if args.port or args.board:
        port, board_type = _target(args)
        return run_demo(args, {"port": port, "type": board_type}, _ca_path(args))
    return run_demo(args)


COMMANDS = {
    ("bench", "up"): cmd_bench_up,
    ("bench", "down"): cmd_bench_down,
    ("bench", "status"): cmd_bench_status,
    ("deploy",): cmd_deploy,
    ("info",): cmd_info,
    ("sign",): cmd_sign,
    ("demo",): cmd_demo,
    ("card", "new"): cmd_card_new,
    ("sim", "modem"): cmd_sim_modem,
    ("provision",): cmd_provision,
    ("read",): cmd_read,
    ("verify",): cmd_verify,
    ("tls",): cmd_tls,
    ("flash",): cmd_flash,
    ("boards",): cmd_boards,
    ("reset",): cmd_reset,
}


# ---- plain-words output --------------------------------------------------------------------------

def _say_bench(res):
    if not res.get("boards"):
        return ["no simulated bench is up"]
    lines = []
    for b in res["boards"]:
        state = "running" if b.get("alive", True) else "NOT running"
        lines.append(f"{b['name']}: {state}, serial port {b['port']} ({b['device']}), heap {b['heap']}, "
                     f"modem {b['modem']}")
    return lines


def _say(command, res):
    if command[0] == "bench":
        if command[1] == "down":
            return [f"stopped: {', '.join(res['stopped']) or 'nothing was running'}"]
        return _say_bench(res)
    if command == ("card", "new"):
        roles = res["roles"]
        return [f"card image {res['card']}: {res['profile']} profile, ICCID {res['iccid']}",
                f"signing key {roles['signing_key']}, certificate in file {roles['client_cert']}: {res['subject']} "
                f"(issued by {res['issuer']})"]
    if command == ("deploy",):
        return [f"deployed {len(res['files'])} files to {res['port']} ({len(res['copied'])} changed)"]
    if command == ("info",):
        return [f"{res['board']} on {res['port']}: firmware {res['firmware']}, MicroPython {res['micropython']}, "
                f"{res['mem_free']} bytes free, SIM ICCID {res['sim']['iccid']}"]
    if command == ("provision",):
        return [f"registered SIM {res['iccid']}: {res['subject']}, kid {res['kid'][:16]}..."]
    if command == ("read",):
        return []  # printed as the readings arrived
    if command == ("verify",):
        return [_say_verdict(v) for v in res["readings"]] + [
            f"{len(res['readings']) - res['failed']} of {len(res['readings'])} readings verified"]
    if command == ("tls",):
        from .tls import say

        return say(res)
    if command in (("flash",), ("boards",), ("reset",)):
        from .usb_boards import say

        return say(command[0], res)
    if command == ("sign",):
        return [f"signed by SIM {res['iccid']} key {res['key']}: {res['signature']}",
                f"certificate: {res['subject']} (issued by {res['issuer']})", "signature verified"]
    return []


# ---- argument parsing ----------------------------------------------------------------------------

def _parser():
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: the option may stand before or after the command without one overwriting the other.
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the result as JSON")
    common.add_argument("--state", default=argparse.SUPPRESS,
                        help="the bench's state folder (default $SAFEBENCH_STATE or .bench)")
    target = argparse.ArgumentParser(add_help=False)
    target.add_argument("--port", help="a board's serial port (default: the simulated bench's board)")
    target.add_argument("--board-type", help="board definition in boards/ (default: from the bench)")
    target.add_argument("--board", metavar="ALIAS", help="a board of the bench file, found by its USB serial number")
    target.add_argument("--bench", metavar="FILE", help="the bench file (default $SAFEBENCH_BENCH or bench.yaml)")

    ap = argparse.ArgumentParser(prog="safebench", parents=[common],
                                 description="IoT SAFE SIM signing on MicroPython boards, and its test bench.")
    sub = ap.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="the simulated bench").add_subparsers(dest="action", required=True)
    up = bench.add_parser("up", parents=[common], help="start a simulated board, modem and SIM")
    up.add_argument("--heap", default="256K", help="heap of a 32-bit board, e.g. 64K (default 256K)")
    up.add_argument("--modem", help="wire the board to this modem serial port instead of a simulated modem")
    up.add_argument("--card", help="SIM card image for the simulated modem (default: a new one)")
    up.add_argument("--dialect", default="generic", choices=("generic", "quectel", "simcom"),
                    help="module the simulated modem behaves as (default generic)")
    bench.add_parser("down", parents=[common], help="stop the simulated bench")
    bench.add_parser("status", parents=[common], help="show what the bench runs")
    dep = sub.add_parser("deploy", parents=[common, target], help="compile the firmware and copy it to a board")
    dep.add_argument("--sim-roles", help='JSON file naming where the SIM keeps what, e.g. {"signing_key": "0002"} '
                                         "(default: the generic layout; on the simulated bench, its card's)")
    sub.add_parser("info", parents=[common, target], help="ask the firmware and the SIM who they are")
    sign = sub.add_parser("sign", parents=[common, target], help="have the SIM sign a message; verify it")
    what = sign.add_mutually_exclusive_group()
    what.add_argument("--message", default="hello from safebench", help="text to sign")
    what.add_argument("--hex", help="bytes to sign, in hex")
    sign.add_argument("--ca", help="CA certificate (PEM) that must have issued the SIM's certificate")
    prov = sub.add_parser("provision", parents=[common, target],
                          help="check the SIM's certificate against the CA and register the device")
    prov.add_argument("--ca", help="CA certificate (PEM) that must have issued the SIM's certificate")
    read = sub.add_parser("read", parents=[common, target], help="take signed readings and check them")
    read.add_argument("--count", type=int, default=1, help="how many readings (default 1)")
    read.add_argument("--out", help="append the readings to this file (base64 COSE, one per line)")
    read.add_argument("--ca", help="CA certificate (PEM) of the devices")
    ver = sub.add_parser("verify", parents=[common], help="check saved readings; exit 1 if any fails")
    ver.add_argument("file", help="file of readings (base64 COSE, one per line), or - for stdin")
    ver.add_argument("--ca", help="CA certificate (PEM) of the devices")
    tls = sub.add_parser("tls", parents=[common, target],
                         help="TLS 1.3 from the board with the SIM's keys, to a host server or --connect")
    tls.add_argument("--connect", metavar="HOST:PORT", help="connect to this server instead of a host test server")
    tls.add_argument("--ca", help="with --connect: CA certificate (PEM) the server must chain to (default: the SIM's)")
    tls.add_argument("--server-name", help="with --connect: name to check the server certificate for (default HOST)")
    tls.add_argument("--suite", choices=("gcm", "ccm"), help="offer only this cipher suite (default both)")
    tls.add_argument("--verify", choices=("firmware", "sim"), default="firmware",
                     help="where the server's signatures are checked (default firmware)")
    tls.add_argument("--data", default="hello from the SIM", help="the line to send")
    card = sub.add_parser("card", help="simulated SIM card images").add_subparsers(dest="action", required=True)
    card_new = card.add_parser("new", parents=[common], help="a new card image: fresh keys, a CA-issued certificate")
    card_new.add_argument("--profile", default="generic", help="card profile: generic, thales-mvp, zariot or a file")
    card_new.add_argument("--out", required=True, help="where to write the card image (JSON; never overwritten)")
    card_new.add_argument("--ca-cert", help="CA certificate (PEM) to issue with (default: the bench CA)")
    card_new.add_argument("--ca-key", help="that CA's private key (PEM)")
    sim = sub.add_parser("sim", help="simulated hardware on its own").add_subparsers(dest="action", required=True)
    sim_modem = sim.add_parser("modem", parents=[common], help="run a simulated modem and SIM on a pty or port")
    sim_modem.add_argument("--card", required=True, help="SIM card image (see `safebench card new`)")
    sim_modem.add_argument("--dialect", default="generic", choices=("generic", "quectel", "simcom"),
                           help="module to behave as (default generic)")
    sim_modem.add_argument("--link", help="symlink to create to the modem's pty")
    sim_modem.add_argument("--trace", help="append a JSON-lines trace of AT lines and APDUs to this file")
    sim_modem.add_argument("--control", help="fault-control socket (default: <link>.ctl with --link)")
    sim_modem.add_argument("--realtime", action="store_true", help="delay replies by the modeled time")
    sim_modem.add_argument("--port", help="serve on this serial port (e.g. /dev/ttyUSB0) instead of a pty")
    sim_modem.add_argument("--baud", type=int, help="serial baud rate (default: the card profile's)")
    fl = sub.add_parser("flash", parents=[common, target], help="flash MicroPython to a real board, then deploy")
    fl.add_argument("--image", required=True, help="MicroPython image: .bin (ESP32, esptool) or .uf2 (RP2040)")
    fl.add_argument("--erase", action="store_true", help="ESP32: erase the whole flash first (also the files)")
    fl.add_argument("--offset", help="ESP32: flash offset (default: from the chip, 0x1000 on ESP32, 0x0 on S3/C3)")
    fl.add_argument("--volume", help="RP2040: the mounted RPI-RP2 drive (default: found in /media, /mnt, mounts)")
    fl.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the drive or the port")
    fl.add_argument("--no-deploy", action="store_true", help="only flash MicroPython, do not deploy the firmware")
    brd = sub.add_parser("boards", parents=[common], help="list connected boards (and the simulated bench's)")
    brd.add_argument("--probe", action="store_true", help="ask each board's firmware or MicroPython who it is")
    brd.add_argument("--bench", metavar="FILE", help="bench file whose aliases to show (default bench.yaml)")
    brd.add_argument("--write-bench", metavar="FILE", help="draft a bench file from what is connected")
    sub.add_parser("reset", parents=[common, target], help="hard-reset a board and wait for its port to come back")
    demo = sub.add_parser("demo", parents=[common, target], help="the whole path, on a simulated bench by default")
    demo.add_argument("--ca", help="CA certificate (PEM) of a real board's SIM")
    demo.add_argument("--heap", default="256K", help="heap of the simulated board (default 256K)")
    return ap


def _terminate(signum, frame):
    raise KeyboardInterrupt  # SIGTERM (e.g. a CI timeout) cleans up like Ctrl-C: the bench goes down


def main(argv=None):
    signal.signal(signal.SIGTERM, _terminate)
    args = _parser().parse_args(argv)
    args.json = getattr(args, "json", False)
    args.state = getattr(args, "state", None) or os.environ.get("SAFEBENCH_STATE", ".bench")
    command = (args.command, args.action) if args.command in ("bench", "card", "sim") else (args.command,)
    try:
        res = COMMANDS[command](args)
    except (UsageError, *EXPECTED_ERRORS) as e:
        print(f"safebench: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("safebench: interrupted", file=sys.stderr)
        sys.exit(130)
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        lines = _say(command, res)
        with contextlib.suppress(BrokenPipeError):
            if lines:
                print("\n".join(lines))
    if res.get("failed"):  # e.g. `verify`: readings that did not check out
        sys.exit(1)


if __name__ == "__main__":
    main()
