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

from safebench_simulator.card import Card


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


@pytest.mark.timeout(30)
def test_modem_process_serves_at_on_a_pty(card_path, tmp_path):
    link = tmp_path / "ttyMODEM"
    proc = subprocess.Popen([sys.executable, "-m", "safebench_simulator.modem", "--card", str(card_path),
                             "--link", str(link), "--trace", str(tmp_path / "trace.jsonl")],
                            stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert info["pid"] == proc.pid and info["link"] == str(link)
        assert os.path.realpath(link) == info["port"] and info["port"].startswith("/dev/pts/")
        assert info["control"] == f"{link}.ctl" and info["dialect"] == "generic"
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
        assert proc.wait(timeout=15) == 0  # a loaded 2-core machine (the suite beside two emulated Picos) is slow
        assert not os.path.lexists(link) and not os.path.lexists(info["control"])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    dirs = [json.loads(line)["dir"] for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    assert "apdu>" in dirs and "apdu<" in dirs


@pytest.mark.timeout(10)
def test_missing_card_is_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "safebench_simulator.modem", "--card", str(tmp_path / "none.json")],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().count("\n") == 0 and "card image not found" in result.stderr


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_fd(fd, marker, timeout=5.0):
    deadline, data = time.monotonic() + timeout, b""
    while marker not in data and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.05)[0]:
            data += os.read(fd, 4096)
    return data


@pytest.mark.timeout(20)
def test_serves_a_serial_port(card_path):
    """--port: the modem opens an existing tty raw (here a pty slave standing in for /dev/ttyUSB0)."""
    master, slave = os.openpty()
    port = os.ttyname(slave)
    os.close(slave)  # the modem opens it by name, as it would a USB adapter
    proc = subprocess.Popen([sys.executable, "-m", "safebench_simulator.modem", "--card", str(card_path),
                             "--port", port, "--dialect", "simcom", "--print", "port"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == port
        assert read_fd(master, b"SMS Ready\r\n").endswith(b"\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n")
        os.write(master, b"ATE0\rAT+CCID\r")
        iccid = Card.load(card_path).iccid.encode()
        assert read_fd(master, iccid + b"\r\n\r\nOK\r\n") == b"ATE0\r\r\nOK\r\n\r\n" + iccid + b"\r\n\r\nOK\r\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0  # a loaded 2-core machine (the suite beside two emulated Picos) is slow
    finally:
        stop(proc)
        os.close(master)


@pytest.mark.timeout(20)
def test_unusable_port_is_exit_2(card_path, tmp_path):
    result = subprocess.run([sys.executable, "-m", "safebench_simulator.modem", "--card", str(card_path),
                             "--port", str(tmp_path / "ttyUSB9")], capture_output=True, text=True, timeout=10)
    assert result.returncode == 2 and "cannot set up the port" in result.stderr


@pytest.mark.timeout(20)
def test_realtime_takes_the_modeled_time(card_path):
    card = Card.load(card_path)
    card.profile["timing"] = {"baud": 115200, "latency_ms": {"default": 5, "70": 300}}
    card.save(card_path)
    proc = subprocess.Popen([sys.executable, "-m", "safebench_simulator.modem", "--card", str(card_path), "--realtime"],
                            stdout=subprocess.PIPE, text=True)
    try:
        with serial.Serial(json.loads(proc.stdout.readline())["port"], 115200, timeout=0.05) as port:
            port.write(b"ATE0\r")
            read_until(port, b"OK\r\n")
            start = time.monotonic()
            port.write(b"AT\r")
            assert read_until(port, b"OK\r\n") == b"\r\nOK\r\n"
            assert time.monotonic() - start < 0.3  # no card time for a command without an APDU
            start = time.monotonic()
            port.write(b'AT+CSIM=10,"0070000001"\r')  # MANAGE CHANNEL: 300 ms of card time
            assert read_until(port, b"OK\r\n") == b'\r\n+CSIM: 6,"019000"\r\n\r\nOK\r\n'
            assert time.monotonic() - start >= 0.3
    finally:
        stop(proc)


@pytest.mark.timeout(30)
def test_safebench_sim_modem_cli(card_path, tmp_path):
    """`safebench simulate modem` runs the modem in the foreground; SIGINT (Ctrl-C) stops it cleanly."""
    link = tmp_path / "ttyMODEM"
    cli = [sys.executable, "-m", "safebench", "simulate", "modem", "--card", str(card_path)]
    proc = subprocess.Popen([*cli, "--json", "--link", str(link), "--dialect", "quectel"],
                            stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert info["pid"] == proc.pid and info["dialect"] == "quectel" and info["link"] == str(link)
        with serial.Serial(str(link), 115200, timeout=0.05) as port:
            port.write(b"ATI\r")
            assert b"BG95-M3" in read_until(port, b"OK\r\n")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0  # a loaded 2-core machine (the suite beside two emulated Picos) is slow
        assert not os.path.lexists(link)
    finally:
        stop(proc)
    proc = subprocess.Popen(cli, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip().startswith("/dev/pts/")  # plain: just the port
    finally:
        stop(proc)
    missing = subprocess.run([*cli[:-1], str(tmp_path / "none.json")], capture_output=True, text=True, timeout=10)
    assert missing.returncode == 1 and "safebench card new" in missing.stderr


@pytest.mark.timeout(20)
def test_control_socket_skipped_when_its_path_is_too_long(card_path, tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-m", "safebench_simulator.modem", "--card", str(card_path),
                             "--link", str(deep / "tty")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert info["control"] is None and info["link"] == str(deep / "tty")
    finally:
        stop(proc)
    assert "too long" in proc.stderr.read()
