"""The modem as a process on a pty, driven with pyserial like a board's UART would."""

import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest
import serial

from safebench_sim.card import Card


def read_until(port, marker, timeout=5.0):
    deadline, data = time.monotonic() + timeout, b""
    while marker not in data and time.monotonic() < deadline:
        data += port.read(port.in_waiting or 1)
    return data


def read_raw(path, size, timeout=5.0):
    """Read what is waiting on a tty without flushing it first (pyserial's open does flush)."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        data = b""
        while len(data) < size and select.select([fd], [], [], timeout)[0]:
            data += os.read(fd, size - len(data))
        return data
    finally:
        os.close(fd)


@pytest.fixture
def card_path(tmp_path):
    path = tmp_path / "card.json"
    Card.new().save(path)
    return path


@pytest.mark.timeout(20)
def test_modem_process_serves_at_on_a_pty(card_path, tmp_path):
    link = tmp_path / "ttyMODEM"
    proc = subprocess.Popen([sys.executable, "-m", "safebench_sim.modem", "--card", str(card_path),
                             "--link", str(link), "--trace", str(tmp_path / "trace.jsonl")],
                            stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert info["pid"] == proc.pid and info["link"] == str(link)
        assert os.path.realpath(link) == info["port"] and info["port"].startswith("/dev/pts/")
        assert read_raw(link, 23) == b"\r\nRDY\r\n\r\n+CPIN: READY\r\n"  # pyserial would flush them
        with serial.Serial(str(link), 115200, timeout=0.2) as port:
            port.write(b"ATE0\r")
            assert read_until(port, b"OK\r\n") == b"ATE0\r\r\nOK\r\n"
            port.write(b'AT+CSIM=10,"0070000001"\r')
            assert read_until(port, b"OK\r\n") == b'\r\n+CSIM: 6,"019000"\r\n\r\nOK\r\n'
        with serial.Serial(info["port"], 115200, timeout=0.2) as port:  # close and reopen: still served
            port.write(b"AT\r")
            assert read_until(port, b"OK\r\n") == b"\r\nOK\r\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert not os.path.lexists(link)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    dirs = [json.loads(line)["dir"] for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    assert "apdu>" in dirs and "apdu<" in dirs


@pytest.mark.timeout(10)
def test_missing_card_is_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "safebench_sim.modem", "--card", str(tmp_path / "none.json")],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0 and "card image not found" in result.stderr
