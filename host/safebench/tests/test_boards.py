"""Finding boards by USB identity, waiting for them to come back, resetting and probing them
(on injected port listings, on this machine's real ports, and on a simulated board)."""

import functools
import json
import os
import pty
import threading
import time

import pytest

from safebench import board_definitions
from safebench import usb_boards as boards
from safebench.device import Device
from safebench.errors import BoardError
from safebench.usb_boards import UsbPort

# ---- USB identity --------------------------------------------------------------------------------

@pytest.mark.parametrize("vid, pid, family", [
    (0x303A, 0x1001, "esp32"), (0x303A, 0x4001, "esp32"), (0x303A, 0x80D1, "esp32"), (0x10C4, 0xEA60, "esp32"),
    (0x1A86, 0x7523, "esp32"), (0x0403, 0x6001, "usb-uart"), (0x0403, 0x6015, "usb-uart"),
    (0x2E8A, 0x0005, "rp2"), (0x2C7C, 0x0700, "modem"), (0x1E0E, 0x9206, "modem"), (0x0403, 0x6010, "unknown"),
    (None, None, "unknown")])
def test_classify(vid, pid, family):
    assert boards.classify(vid, pid)[0] == family


def test_reset_method():
    assert boards.reset_method("esp32", 0x10C4, 0xEA60) == "dtr-rts"
    assert boards.reset_method("esp32", 0x303A, 0x1001) == "dtr-rts"  # USB-Serial/JTAG emulates EN on RTS
    assert boards.reset_method("esp32", 0x303A, 0x4001) == "machine"  # MicroPython's TinyUSB CDC does not
    assert boards.reset_method("rp2") == boards.reset_method("unix") == "machine"
    assert boards.reset_method("modem") is boards.reset_method("unknown") is None


def test_board_types_and_names():
    assert board_definitions.board_family("lilygo_t_sim7080g_s3") == "esp32" and board_definitions.board_family("picow_bg95") == "rp2"
    assert set(board_definitions.BOARD_CHIPS) == set(board_definitions.board_types())  # a new board needs its chip here
    assert board_definitions.board_type_for_name("esp32-devkitc-bg96") == "esp32_devkitc_bg96"
    assert board_definitions.board_type_for_name("unix-sim") == "unix_sim"
    assert board_definitions.board_type_for_name("no-such-board") is None


def test_listing_with_injected_ports():
    ports = [UsbPort("/dev/ttyACM1", 0x2E8A, 0x0005, "E6605838", "Board in FS mode", "MicroPython", "1-1.2:1.0"),
             UsbPort("/dev/ttyUSB0", 0x10C4, 0xEA60, "0001", "CP2102 USB to UART", "Silicon Labs", "1-1.3:1.0")]
    found = boards.connected(lambda: ports)
    assert [(b["port"], b["family"], b["vid_pid"], b["serial_number"]) for b in found] == [
        ("/dev/ttyACM1", "rp2", "2E8A:0005", "E6605838"), ("/dev/ttyUSB0", "esp32", "10C4:EA60", "0001")]
    assert boards.ports_with_serial("0001", lambda: ports)[0].device == "/dev/ttyUSB0"


def test_listing_on_this_machine():
    from serial.tools import list_ports

    found = boards.connected()
    assert [b["port"] for b in found] == sorted(p.device for p in list_ports.comports())
    assert all(not b["simulated"] for b in found)


# ---- waiting for a port --------------------------------------------------------------------------

@pytest.mark.timeout(20)
def test_wait_for_port_by_serial_number_after_reenumeration():
    """The board vanishes (reset) and comes back under another node: found by its serial number."""
    bus = {"ports": [UsbPort("/dev/null", 0x2E8A, 0x0005, "ABC")]}  # /dev/null: a node we may open
    t = threading.Timer(0.3, lambda: bus.update(ports=[]))
    t2 = threading.Timer(0.8, lambda: bus.update(ports=[UsbPort("/dev/tty", 0x2E8A, 0x0005, "XYZ"),
                                                       UsbPort("/dev/zero", 0x2E8A, 0x0005, "ABC")]))
    t.start(), t2.start()
    start = time.monotonic()
    try:
        port = boards.wait_for_port(serial_number="ABC", timeout=5, vanish=2, lister=lambda: bus["ports"])
    finally:
        t.cancel(), t2.cancel()
    assert port == "/dev/zero" and time.monotonic() - start >= 0.8


def test_wait_for_port_gives_up_clearly():
    start = time.monotonic()
    with pytest.raises(BoardError, match=r"\(USB serial number ABC\) did not come back within 0.3 s"):
        boards.wait_for_port(serial_number="ABC", timeout=0.3, lister=lambda: [])
    assert time.monotonic() - start < 2


@pytest.mark.timeout(20)
def test_wait_for_a_path_that_appears_later(tmp_path):
    master, slave = pty.openpty()
    link = tmp_path / "tty"
    t = threading.Timer(0.4, lambda: link.symlink_to(os.ttyname(slave)))
    t.start()
    try:
        assert boards.wait_for_port(path=str(link), timeout=5) == str(link)
    finally:
        t.cancel()
        os.close(master)
        os.close(slave)


# ---- resets --------------------------------------------------------------------------------------

class RecordingSerial:
    def __init__(self):
        self.events = []

    def __setattr__(self, name, value):
        if name in ("dtr", "rts"):
            self.events.append((name, value, time.monotonic()))
        object.__setattr__(self, name, value)


def test_esp32_reset_sequence():
    ser = RecordingSerial()
    boards.esp32_hard_reset(ser, pulse=0.05)
    assert [(n, v) for n, v, _ in ser.events] == [("dtr", False), ("rts", True), ("rts", False)]
    assert ser.events[2][2] - ser.events[1][2] >= 0.05  # EN held low for the pulse
    assert not any(v for n, v, _ in ser.events if n == "dtr")  # IO0 never pulled low: no bootloader


def test_dtr_rts_reset_on_a_pty_says_why_not():
    master, slave = pty.openpty()
    try:
        with pytest.raises(BoardError, match=r"cannot drive DTR/RTS on /dev/pts/\d+ .*wired to EN/IO0"):
            boards.reset(os.ttyname(slave), "esp32_devkitc_bg96", lister=lambda: [])
    finally:
        os.close(master)
        os.close(slave)


def test_reset_of_an_unknown_board():
    with pytest.raises(BoardError, match="do not know how to reset /dev/null .*give --board-type"):
        boards.reset("/dev/null", lister=lambda: [])


# ---- the simulated board -------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_probe_simulated_board(simulated_board):
    res = boards.probe(simulated_board["port"])
    assert res["firmware"]["board"] == "unix-sim" and res["firmware"]["board_type"] == "unix_sim"
    mp = boards.probe_micropython(simulated_board["port"])
    assert mp["platform"] == "linux" and mp["mpy"] & 0xFF == 6 and mp["micropython"].startswith("1.")


@pytest.mark.timeout(60)
def test_reset_simulated_board(simulated_board):
    res = boards.reset(simulated_board["port"], "unix_sim")
    assert res == {"port": simulated_board["port"], "method": "machine", "family": "unix"}
    with Device(simulated_board["port"], timeout=15) as dev:
        assert dev.connect()["board"] == "unix-sim"  # it rebooted into the firmware


@pytest.mark.timeout(60)
def test_probe_without_micropython():
    master, slave = pty.openpty()
    try:
        res = boards.probe(os.ttyname(slave), timeout=0.5)
    finally:
        os.close(master)
        os.close(slave)
    assert set(res) == {"error"} and "mpremote exec on /dev/pts/" in res["error"]


@pytest.mark.timeout(90)
def test_cli_boards_probe_and_write_bench(simulated_board, tmp_path, run_cli):
    cli = functools.partial(run_cli, state=simulated_board["state"], timeout=60)
    res = cli("boards", "--probe", "--json")
    assert res.returncode == 0, res.stderr
    simulated = [b for b in json.loads(res.stdout)["boards"] if b["simulated"]]
    assert len(simulated) == 1 and simulated[0]["port"] == simulated_board["port"]
    assert simulated[0]["probe"]["firmware"]["board"] == "unix-sim"

    res = cli("boards", "--write-bench", "drafted.yaml")
    assert res.returncode == 0, res.stderr
    assert "wrote drafted.yaml with 1 board(s)" in res.stdout
    listed = cli("boards", "--bench", "drafted.yaml")
    assert f"{simulated_board['port']}: simulated board (sim0, running) [sim0]" in listed.stdout  # its alias
    (tmp_path / "drafted.yaml").write_text((tmp_path / "drafted.yaml").read_text()
                                           + '  pico-9:\n    serial: "E6600000"\n    type: picow_bg95\n')
    listed = cli("boards", "--bench", "drafted.yaml")
    assert listed.stdout.endswith("in the bench file but not connected: pico-9\n")
    from safebench import bench_file

    entries = bench_file.load(tmp_path / "drafted.yaml")
    assert entries["sim0"].port == simulated_board["port"] and entries["sim0"].type == "unix_sim"
    again = cli("boards", "--write-bench", "drafted.yaml")
    assert again.returncode == 1 and again.stderr == "safebench: drafted.yaml exists: not overwriting it\n"


@pytest.mark.timeout(60)
def test_cli_reset(simulated_board, run_cli):
    cli = functools.partial(run_cli, state=simulated_board["state"], timeout=60)
    res = cli("reset", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["method"] == "machine"
    res = cli("reset", "--port", "/dev/null")
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "give --board-type" in res.stderr
