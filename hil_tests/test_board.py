"""The board behaves like a MicroPython board to mpremote and reboots into the firmware."""

import subprocess
import sys
from pathlib import Path

MPREMOTE = str(Path(sys.executable).with_name("mpremote"))


def _mpremote(port, *args):
    return subprocess.run([MPREMOTE, "connect", port, *args], capture_output=True, text=True, timeout=60)


def test_mpremote_lists_the_deployed_firmware(board):
    res = _mpremote(board["port"], "fs", "ls", ":lib")
    assert res.returncode == 0, res.stderr
    assert "iotsafe.mpy" in res.stdout and "apdu.mpy" in res.stdout


def test_mpremote_exec_then_firmware_comes_back(board, device):
    res = _mpremote(board["port"], "exec", "import sys; print('impl', sys.implementation.name)")
    assert res.returncode == 0, res.stderr
    assert "impl micropython" in res.stdout
    info = device.connect()  # the board is at the REPL now: the rig reboots it into the firmware
    assert info["firmware"]


def test_soft_reset_runs_main_again(device):
    ready = device.reboot()
    assert ready["board"]
    assert device.call("info")["board"] == ready["board"]


def test_machine_reset_reboots(board, device):
    device.serial.write(b"\x03\x03")  # to the REPL
    device.serial.write(b"import machine; machine.reset()\r")
    ready = device._wait(lambda m: m.get("method") == "ready", 20, "ready after machine.reset()")
    assert ready["params"]["firmware"]
