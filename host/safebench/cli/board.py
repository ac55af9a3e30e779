"""Commands on a board: deploy, info, flash, boards, reset."""

import argparse
import json
from pathlib import Path

from .. import deploy as deploy_mod
from .. import usb_boards
from ..device import Device
from ..errors import BenchFileError, PortBusyError, UnreadableFileError, UsageError
from ..port_lock import PortLock
from .command import Command, add_bench_file, simulated_bench, target

# ---- deploy --------------------------------------------------------------------------------------

def _deploy_arguments(parser):
    parser.add_argument("--sim-roles", metavar="FILE",
                        help='JSON file naming where the SIM keeps what, e.g. {"signing_key": "0002", "ca_cert": ""}, '
                             "over what the firmware finds on the card (default: found on the card; "
                             "docs/iotsafe.md §7)")
    parser.add_argument("--network", metavar="FILE",
                        help='JSON file of the SIM\'s network settings, e.g. {"apn": "iot.example", "registration_ms": '
                             '180000}, over the board definition\'s (written as network.json, which later deploys keep; '
                             "docs/hardware.md §8)")
    parser.add_argument("--features", type=_features, metavar="core,readings,...",
                        help=f"the firmware features to deploy, of {', '.join(deploy_mod.features())} (default: all; "
                             "core always); modules of the others are deleted from the board")


def _features(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = deploy_mod.features()
    if not names or any(name not in known for name in names):
        raise argparse.ArgumentTypeError(f"{text!r}: name features of {', '.join(known)}, separated by commas")
    return names


def _deploy(args):
    port, board_type = target(args)
    roles = _json_file("--sim-roles", args.sim_roles) if args.sim_roles else None  # else: found on the card
    network = _json_file("--network", args.network) if args.network else None
    res = deploy_mod.deploy(port, board_type, Path(args.state) / "build" / board_type, roles, args.features,
                            progress=args.progress, network=network)
    return {"port": port, "board_type": board_type, **res}


def _json_file(option, path):
    """The JSON object in the file `option` names; one line if it is not there or not one."""
    try:
        value = json.loads(Path(path).read_text())
    except OSError as e:
        raise UnreadableFileError(f"cannot read the {option} file {path}: {e.strerror}") from None
    except ValueError as e:
        raise UnreadableFileError(f"the {option} file {path} is not JSON ({e})") from None
    if not isinstance(value, dict):
        raise UnreadableFileError(f"the {option} file {path} is not a JSON object")
    return value


def _say_deployed(res):
    removed = f", {len(res['removed'])} removed" if res["removed"] else ""
    return [f"deployed {len(res['files'])} files to {res['port']} ({len(res['copied'])} changed{removed})"]


# ---- info ----------------------------------------------------------------------------------------

def _info(args):
    port, _ = target(args)
    with Device(port) as dev:
        info = dev.connect()
        info["sim"] = dev.call("sim.info")
        info["binding"] = dev.call("binding.status")
    return {"port": port, **info}


def _binding_line(b):
    if b["state"] == "bound":
        return f"binding: bound to SIM {b['bound']['iccid']} (kid {b['bound']['kid'][:16]}...), generation " \
               f"{b['bound']['generation']}, signed by that SIM"
    if b["state"] == "unbound":
        return "binding: none on the board (`safebench provision` makes it)"
    return f"binding: {b['state']}: {b.get('reason') or 'no SIM in the modem'}"


def _say_info(res):
    return [f"{res['board']} on {res['port']}: firmware {res['firmware']}, MicroPython {res['micropython']}, "
            f"{res['mem_free']} bytes free, SIM ICCID {res['sim']['iccid']}",
            *(f"modem: {w}" for w in res["sim"].get("modem_warnings", ())),  # set-up commands it refused
            _binding_line(res["binding"])]


# ---- modem ---------------------------------------------------------------------------------------

def _modem_arguments(parser):
    parser.add_argument("--attach", action="store_true",
                        help="carry the bring-up out first (SIM, APN, registration, data context), as sockets do")
    parser.add_argument("--timeout", type=_seconds, default=120.0,
                        help="seconds to wait for the network registration with --attach (default 120)")


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds, more than 0 and at most 3600")
    return value


def _modem(args):
    """The modem's bring-up, stage by stage (docs/protocol.md `modem.status`)."""
    port, _ = target(args)
    with Device(port) as dev:
        dev.connect()
        status = dev.call("modem.status", attach=args.attach, timeout_ms=int(args.timeout * 1000),
                          timeout=args.timeout + 30)  # the board's own deadline answers first
    return {"port": port, **status}


def _say_modem(res):
    stages, reg = res["stages"], res["registration"]
    detail = {"registration": f" ({reg['state']}: stat {reg['stat']} by {reg['via']})" if reg["via"] else
              " (the modem reports no registration)"}
    return [*(f"{stage}: {stages[stage]}{detail.get(stage, '')}" for stage in STAGES if stages.get(stage) is not None),
            f"APN: {res['apn'] or 'the network default'}", *(f"modem: {w}" for w in res["warnings"])]


STAGES = ("at", "sim", "registration", "pdp")  # the bring-up's order


# ---- flash ---------------------------------------------------------------------------------------

def _flash_arguments(parser):
    parser.add_argument("--image", required=True, help="MicroPython image: .bin (ESP32, esptool) or .uf2 (RP2040)")
    parser.add_argument("--erase", action="store_true", help="ESP32: erase the whole flash first (also the files)")
    parser.add_argument("--offset", help="ESP32: flash offset (default: from the chip, 0x1000 on ESP32, 0x0 on S3/C3)")
    parser.add_argument("--volume", help="RP2040: the mounted RPI-RP2 drive (default: found in /media, /mnt, mounts)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the drive or the port")
    parser.add_argument("--no-deploy", action="store_true", help="only flash MicroPython, do not deploy the firmware")


def _flash(args):
    """Flash MicroPython (esptool for a .bin, the BOOTSEL drive for a .uf2), then deploy the firmware."""
    from .. import flash

    port, board_type = target(args, type_required=False) if args.port or args.board else (None, args.board_type)
    if not port and Path(args.image).suffix.lower() != ".uf2":
        raise UsageError("flash needs --port PORT or --board ALIAS")
    if not args.no_deploy and not board_type:
        raise UsageError("give --board-type (to deploy the firmware after flashing) or --no-deploy")
    try:
        offset = int(args.offset, 0) if args.offset else None
    except ValueError:
        raise UsageError(f"--offset {args.offset}: give a number, e.g. 0x1000") from None
    # an emulated Pico of the simulated bench shows its BOOTSEL drive in its board folder, not under /media
    bootsel_root = simulated_bench(args).bootsel_root(port) if port and not args.volume else None
    res = flash.flash(port, args.image, board_type, args.erase, offset, args.volume, args.timeout,
                      progress=args.progress, **({"roots": [bootsel_root]} if bootsel_root else {}))
    if not args.no_deploy:
        res["deploy"] = deploy_mod.deploy(res["port"], board_type, Path(args.state) / "build" / board_type,
                                          progress=args.progress)
    return res


# ---- boards --------------------------------------------------------------------------------------

def _boards_arguments(parser):
    parser.add_argument("--probe", action="store_true", help="ask each board's firmware or MicroPython who it is")
    add_bench_file(parser)
    parser.add_argument("--write-bench", metavar="FILE", help="draft a bench file from what is connected")


def _boards(args):
    """Serial ports and the boards behind them (by USB identity; with --probe, as they say themselves)."""
    from .. import bench_file

    found = usb_boards.connected(state_dir=args.state)
    try:
        entries = bench_file.load(args.bench_file) if args.bench_file or bench_file.bench_path().exists() else {}
    except BenchFileError:
        if args.bench_file:
            raise
        entries = {}  # a broken ./bench.yaml should not hide what is connected; --board says why it is broken
    for b in found:
        b["alias"] = bench_file.alias_of(entries, b)
        if args.probe and (b["simulated"] or b["family"] in ("esp32", "rp2", "usb-uart")):
            b["probe"] = _probe(b["port"])
            b.setdefault("board_type", (b["probe"].get("firmware") or {}).get("board_type"))
    res = {"boards": found, "not_connected": sorted(set(entries) - {b["alias"] for b in found})}
    if args.write_bench:
        res.update(bench_file.draft(found, args.write_bench))
    return res


def _probe(port):
    """usb_boards.probe, unless another command has the board: a probe would talk across its exchange."""
    try:
        with PortLock(port):
            return usb_boards.probe(port)
    except PortBusyError as e:
        return {"error": str(e)}


# ---- reset ---------------------------------------------------------------------------------------

def _reset(args):
    port, board_type = target(args, type_required=False)
    return usb_boards.reset(port, board_type)


COMMANDS = (
    Command(("deploy",), "compile the firmware and copy it to a board", _deploy, _deploy_arguments, _say_deployed,
            target=True),
    Command(("info",), "ask the firmware and the SIM who they are", _info, say=_say_info, target=True),
    Command(("modem",), "the modem's bring-up: SIM, network registration, APN, data context", _modem,
            _modem_arguments, _say_modem, target=True),
    Command(("flash",), "flash MicroPython to a board (or an emulated Pico), then deploy", _flash, _flash_arguments,
            lambda res: usb_boards.say("flash", res), target=True),
    Command(("boards",), "list connected boards (and the simulated bench's)", _boards, _boards_arguments,
            lambda res: usb_boards.say("boards", res)),
    Command(("reset",), "hard-reset a board and wait for its port to come back", _reset,
            say=lambda res: usb_boards.say("reset", res), target=True),
)
