"""Finding boards on the USB bus, telling them apart by USB identity, and resetting them.

A board is named by its USB serial number, never by its /dev path: ttyACM0 and ttyUSB1 change with
plug order, and a native-USB board (Pico, ESP32-S3) gets a new node every time it resets. So a reset
or a flash here ends by waiting for the port with the same serial number to come back.

Every function that looks at the bus takes a `lister` (default `serial.tools.list_ports.comports`),
so tests can hand it records shaped like pyserial's ListPortInfo.
"""

import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .board_definitions import board_family, board_type_for_name
from .errors import BoardError, DeviceError, RpcError

log = logging.getLogger(__name__)

# (VID, PID) -> (board family, what it usually is); PID None matches any product of the vendor.
KNOWN_USB = {
    (0x303A, 0x1001): ("esp32", "Espressif USB-Serial/JTAG (ESP32-S3/C3/C6)"),
    (0x303A, 0x4001): ("esp32", "Espressif native USB, MicroPython's own CDC (ESP32-S2/S3)"),
    (0x303A, None): ("esp32", "Espressif native USB"),
    (0x10C4, 0xEA60): ("esp32", "Silicon Labs CP210x USB-UART (ESP32 dev board?)"),
    (0x1A86, 0x7523): ("esp32", "WCH CH340 USB-UART (ESP32 dev board?)"),
    (0x1A86, 0x55D4): ("esp32", "WCH CH9102 USB-UART (ESP32 dev board?)"),
    (0x0403, 0x6001): ("usb-uart", "FTDI FT232R USB-UART"),
    (0x0403, 0x6015): ("usb-uart", "FTDI FT231X USB-UART"),
    (0x2E8A, 0x0005): ("rp2", "Raspberry Pi RP2040/RP2350 running MicroPython"),
    (0x2C7C, None): ("modem", "Quectel cellular module (its own USB AT/diag ports)"),
    (0x1E0E, None): ("modem", "SIMCom cellular module (its own USB AT/diag ports)"),
}

# Boards whose port survives a reset (a USB-UART bridge stays enumerated) vs native USB that re-enumerates.
BRIDGE_VIDS = {0x10C4, 0x1A86, 0x0403}
ESP_RESET_PULSE = 0.1  # s the EN line is held low


@dataclass
class UsbPort:
    """The fields of pyserial's ListPortInfo that this module reads (tests build these by hand)."""

    device: str
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    description: str = ""
    manufacturer: str | None = None
    location: str | None = None


def comports():
    from serial.tools import list_ports

    return list_ports.comports()


def classify(vid, pid):
    """(family, what) for a USB VID:PID: family is esp32, rp2, usb-uart, modem or unknown."""
    if vid is None:
        return "unknown", "not a USB device"
    return KNOWN_USB.get((vid, pid)) or KNOWN_USB.get((vid, None)) or ("unknown", "unknown USB device")


def describe(port):
    """A ListPortInfo-like record as a plain dict, with the board family its VID:PID suggests."""
    family, what = classify(port.vid, port.pid)
    return {"port": port.device, "simulated": False, "family": family, "kind": what,
            "vid_pid": f"{port.vid:04X}:{port.pid:04X}" if port.vid is not None else None,
            "serial_number": port.serial_number, "description": port.description,
            "manufacturer": port.manufacturer, "location": port.location}


def connected(lister=None, state_dir=None):
    """Every serial port on this machine, plus the simulated bench's boards (when `state_dir` has one)."""
    found = [describe(p) for p in sorted((lister or comports)(), key=lambda p: p.device)]
    if state_dir is not None:
        from .simulated_bench import SimulatedBench

        for b in SimulatedBench(state_dir).status()["boards"]:
            found.append({"port": b["port"], "simulated": True, "family": "unix", "kind": "simulated board",
                          "board_type": b["type"], "name": b["name"], "device": b.get("device"),
                          "alive": b["alive"], "vid_pid": None, "serial_number": None})
    return found


def ports_with_serial(serial_number, lister=None, interface=None):
    """The ports whose USB serial number is `serial_number` (optionally only USB interface `interface`)."""
    ports = [p for p in (lister or comports)() if p.serial_number == serial_number]
    if interface is not None:
        ports = [p for p in ports if (p.location or "").rpartition(".")[2] == str(interface)]
    return sorted(ports, key=lambda p: p.device)


def port_info(device, lister=None):
    """pyserial's record of `device` (the path or a symlink to it), or None (a pty, a gone board)."""
    real = os.path.realpath(device)
    for p in (lister or comports)():
        if p.device in (device, real):
            return p
    return None


def wait_for_port(serial_number=None, path=None, timeout=20.0, vanish=0.0, lister=None, exclude=(), match=None):
    """Wait for a board's port to be there and usable; returns its device path.

    By `serial_number` (what survives re-enumeration), by `path`, or for the first port for which
    `match(record)` is true whose device is not in `exclude` (a board that had no port before).
    With `vanish` > 0 it first waits that long for the old port to go away, so a board that is only
    about to reset is not taken for one that is back.
    """
    def present():
        if path is not None and serial_number is None:
            return path if os.path.exists(path) and os.access(path, os.R_OK | os.W_OK) else None
        for p in (lister or comports)():
            wanted = p.serial_number == serial_number if serial_number is not None else match(p)
            if wanted and p.device not in exclude and os.access(p.device, os.R_OK | os.W_OK):
                return p.device
        return None

    end = time.monotonic() + vanish
    while vanish and present() and time.monotonic() < end:
        time.sleep(0.05)
    deadline = time.monotonic() + timeout
    while True:
        device = present()
        if device:
            return device
        if time.monotonic() >= deadline:
            what = f"USB serial number {serial_number}" if serial_number is not None else path or "a new port"
            raise BoardError(f"the board's serial port ({what}) did not come back within {timeout:g} s")
        time.sleep(0.1)


def reset_method(family, vid=None, pid=None):
    """How to hard-reset a board: "dtr-rts" (ESP32 EN/IO0 lines) or "machine" (machine.reset() via mpremote)."""
    if family == "esp32" and (vid, pid) != (0x303A, 0x4001):  # MicroPython's own CDC has no EN wiring
        return "dtr-rts"
    if family in ("esp32", "rp2", "unix"):
        return "machine"
    return None


def esp32_hard_reset(ser, pulse=ESP_RESET_PULSE):
    """The classic auto-reset circuit: RTS=1 DTR=0 pulls EN low; RTS=0 lets the chip run. DTR stays 0
    so IO0 stays high and the chip boots the flashed firmware, not the ROM bootloader."""
    ser.dtr = False
    ser.rts = True
    time.sleep(pulse)
    ser.rts = False


def _dtr_rts_reset(device):
    import serial

    ser = serial.Serial()
    ser.port, ser.dtr, ser.rts = device, False, False  # applied on open: opening must not reset by itself
    try:
        ser.open()
        esp32_hard_reset(ser)
    except (OSError, serial.SerialException) as e:
        raise BoardError(f"cannot drive DTR/RTS on {device} ({e}); is it a USB-UART wired to EN/IO0?") from None
    finally:
        ser.close()


def mpremote(port, *command, timeout=20.0):
    """Run an mpremote command on `port`; returns its output, raises BoardError with its last line."""
    argv = [sys.executable, "-m", "mpremote", "connect", port, *command]
    log.debug("running %r", argv)
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BoardError(f"mpremote {command[0]} on {port} did not finish within {timeout:g} s") from None
    if res.returncode:
        lines = (res.stderr or res.stdout).strip().splitlines() or ["no output"]
        raise BoardError(f"mpremote {command[0]} on {port} failed: {lines[-1]}")
    return res.stdout


def reset(port, board_type=None, timeout=20.0, lister=None):
    """Hard-reset the board on `port` and wait until its port is back; returns {port, method, family}."""
    info = port_info(port, lister)
    family = board_family(board_type) or (classify(info.vid, info.pid)[0] if info else None)
    method = reset_method(family, info and info.vid, info and info.pid)
    if method is None:
        raise BoardError(f"do not know how to reset {port} (family {family or 'unknown'}): give --board-type")
    if method == "dtr-rts":
        _dtr_rts_reset(port)
    else:
        mpremote(port, "reset")
    native_usb = info is not None and info.vid not in BRIDGE_VIDS
    back = wait_for_port(serial_number=info and info.serial_number, path=port, timeout=timeout,
                         vanish=1.5 if native_usb else 0.0, lister=lister)
    return {"port": back, "method": method, "family": family}


PROBE_CODE = ("import sys\ni = sys.implementation\n"
              "print('SAFEBENCH-PROBE', sys.platform, getattr(i, '_mpy', 0), '.'.join(str(x) for x in i.version[:3]),"
              " getattr(i, '_machine', '?'), sep='|')")


def probe_micropython(port, timeout=10.0):
    """What MicroPython says about itself on `port` (through mpremote: works with or without our firmware)."""
    out = mpremote(port, "exec", PROBE_CODE, timeout=timeout)
    for line in out.splitlines():
        if line.startswith("SAFEBENCH-PROBE|"):
            _, platform, mpy, version, machine = line.split("|", 4)
            return {"platform": platform, "mpy": int(mpy), "micropython": version, "machine": machine}
    raise BoardError(f"{port} did not answer like MicroPython: {out.strip()[-120:] or 'no output'}")


def probe(port, timeout=3.0):
    """Ask the board on `port` who it is: our firmware's `info`, else MicroPython itself; never raises."""
    from .device import Device

    try:
        with Device(port, timeout=timeout) as dev:
            info = dev.connect()
        info["board_type"] = board_type_for_name(info.get("board"))
        return {"firmware": info}
    except (DeviceError, RpcError):
        pass
    try:
        return {"micropython": probe_micropython(port, timeout + 3)}  # mpremote hangs on a silent port
    except BoardError as e:
        return {"error": str(e)}


# ---- plain words for the CLI ---------------------------------------------------------------------

def _say_board(b):
    ident = (f"{b['name']}, {'running' if b['alive'] else 'NOT running'}" if b["simulated"] else
             f"{b['vid_pid']}, serial number {b['serial_number'] or 'none'}" if b["vid_pid"] else None)
    line = f"{b['port']}: {b['kind']}" + (f" ({ident})" if ident else "") + (f" [{b['alias']}]" if b.get("alias") else "")
    probe = b.get("probe") or {}
    if "firmware" in probe:
        fw = probe["firmware"]
        line += f"\n    firmware {fw.get('firmware')} on {fw.get('board')}, MicroPython {fw.get('micropython')}"
    elif "micropython" in probe:
        mp = probe["micropython"]
        line += f"\n    MicroPython {mp['micropython']} ({mp['platform']}, {mp['machine']}), no safebench firmware"
    elif "error" in probe:
        line += f"\n    no answer: {probe['error']}"
    return line


def say(command, res):
    if command == "boards":
        lines = [_say_board(b) for b in res["boards"]] or ["no serial ports and no simulated bench"]
        if res.get("not_connected"):
            lines.append(f"in the bench file but not connected: {', '.join(res['not_connected'])}")
        if res.get("bench_file"):
            lines.append(f"wrote {res['bench_file']} with {res['drafted']} board(s): check each type: before use")
        return lines
    if command == "reset":
        return [f"reset the board ({res['method']}); it is back on {res['port']}"]
    where = f"{res['chip']} at {res['offset']}" if res["tool"] == "esptool" else f"{res['chip']} via {res['volume']}"
    lines = [f"flashed {Path(res['image']).name} ({where}); the board is back on {res['port']}"]
    if "deploy" in res:
        lines.append(f"deployed {len(res['deploy']['files'])} files ({len(res['deploy']['copied'])} changed)")
    return lines
