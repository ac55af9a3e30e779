"""The board behaves like a MicroPython board to mpremote and reboots into the firmware."""

import time


def _read_until(port, marker, timeout):
    deadline = time.monotonic() + timeout
    seen = b""
    while marker not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {marker!r} within {timeout} s; got {seen[-200:]!r}")
        seen += port.read(256)


def test_mpremote_lists_the_deployed_firmware(board, mpremote):
    res = mpremote(board["port"], "fs", "ls", ":lib")
    assert res.returncode == 0, res.stderr
    assert "iotsafe.mpy" in res.stdout and "apdu.mpy" in res.stdout


def test_mpremote_exec_then_firmware_comes_back(board, device, mpremote):
    res = mpremote(board["port"], "exec", "import sys; print('impl', sys.implementation.name)")
    assert res.returncode == 0, res.stderr
    assert "impl micropython" in res.stdout
    info = device.connect()  # the board is at the REPL now: the rig reboots it into the firmware
    assert info["firmware"]


def test_soft_reset_runs_main_again(device):
    ready = device.reboot()
    assert ready["board"]
    assert device.call("info")["board"] == ready["board"]


def test_machine_reset_reboots(board, device):
    device.serial.write(b"\x03\x03")  # to the REPL; what is typed before its prompt may be lost, as on a real board
    _read_until(device.serial, b">>> ", 10)
    device.serial.write(b"import machine; machine.reset()\r")
    ready = device._wait(lambda m: m.get("method") == "ready", 20, "ready after machine.reset()")
    assert ready["params"]["firmware"]
