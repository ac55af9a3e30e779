"""Faults injected through the control socket of a running modem process, seen by a pyserial client."""

import json
import os
import socket
import stat
import subprocess
import sys
import time

import pytest
import serial

from safebench_simulator.card import Card
from safebench_simulator.faults import FaultControl, FaultControlError

IMSI = "001010000000001"
CIMI_REPLY = f"\r\n{IMSI}\r\n\r\nOK\r\n".encode()


@pytest.fixture
def card_path(tmp_path):
    path = tmp_path / "card.json"
    Card.new(imsi=IMSI).save(path)
    return path


@pytest.fixture
def start_modem(tmp_path, card_path):
    """Start a modem process; yields a function dialect -> (ready info, open serial port, FaultControl)."""
    procs, closers = [], []

    def start(dialect="generic"):
        link = tmp_path / f"tty{len(procs)}"
        proc = subprocess.Popen([sys.executable, "-m", "safebench_simulator.modem", "--card", str(card_path),
                                 "--link", str(link), "--dialect", dialect], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        info = json.loads(proc.stdout.readline())
        port = serial.Serial(info["link"], 115200, timeout=0.05)
        control = FaultControl(info["control"])
        closers.extend((port.close, control.close))
        port.write(b"ATE0\rAT+CMEE=1\r")
        assert read_until(port, b"OK\r\n\r\nOK\r\n").endswith(b"\r\nOK\r\n\r\nOK\r\n")
        return info, port, control

    yield start
    for close in closers:
        close()
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_until(port, marker, timeout=3.0):
    deadline, data = time.monotonic() + timeout, b""
    while marker not in data and time.monotonic() < deadline:
        data += port.read(port.in_waiting or 1)
    return data


def read_for(port, seconds):
    deadline, data = time.monotonic() + seconds, b""
    while time.monotonic() < deadline:
        data += port.read(port.in_waiting or 1)
    return data


def command(port, line, marker=b"\r\n"):
    port.write(line.encode() + b"\r")
    return read_until(port, marker)


@pytest.mark.timeout(30)
def test_ready_line_names_the_control_socket(start_modem):
    info, _, control = start_modem()
    assert info["control"] == info["link"] + ".ctl" and info["dialect"] == "generic"
    assert stat.S_ISSOCK(os.stat(info["control"]).st_mode)
    status = control.status()
    assert status["sim"] == "present" and status["echo"] is False and status["cmee"] == 1


@pytest.mark.timeout(30)
def test_reply_faults(start_modem):
    _, port, control = start_modem()
    assert control.drop()["pending"] == {"drop": True}
    port.write(b"AT+CIMI\r")
    assert read_for(port, 0.4) == b""
    assert command(port, "AT+CIMI", b"OK\r\n") == CIMI_REPLY

    control.delay(300)
    start = time.monotonic()
    assert command(port, "AT+CIMI", b"OK\r\n") == CIMI_REPLY
    assert time.monotonic() - start >= 0.3

    control.garble(2)
    port.write(b"AT+CIMI\r")
    garbled = read_for(port, 0.4)
    assert len(garbled) == len(CIMI_REPLY)
    assert sum(a != b for a, b in zip(garbled, CIMI_REPLY, strict=True)) == 2

    control.split(chunk=3, gap_ms=40)
    start = time.monotonic()
    assert command(port, "AT+CIMI", b"OK\r\n") == CIMI_REPLY  # 25 bytes in 9 pieces, 8 gaps
    assert time.monotonic() - start >= 0.3

    control.cme(13)
    assert command(port, "AT+CIMI", b"\r\n+CME ERROR: 13\r\n") == b"\r\n+CME ERROR: 13\r\n"
    assert control.status()["pending"] == {}


@pytest.mark.timeout(30)
def test_sim_faults(start_modem):
    _, port, control = start_modem()
    assert command(port, 'AT+CCHO="A0000005590010"', b"OK\r\n") == b"\r\n+CCHO: 1\r\n\r\nOK\r\n"
    assert control.sim_remove()["sim"] == "removed"
    assert read_until(port, b"NOT READY\r\n") == b"\r\n+CPIN: NOT READY\r\n"
    assert command(port, "AT+CPIN?", b"ERROR: 10\r\n") == b"\r\n+CME ERROR: 10\r\n"
    assert command(port, 'AT+CGLA=1,10,"8084000008"', b"10\r\n") == b"\r\n+CME ERROR: 10\r\n"
    control.sim_insert()
    assert read_until(port, b"READY\r\n") == b"\r\n+CPIN: READY\r\n"
    assert command(port, 'AT+CGLA=1,10,"8084000008"', b"21\r\n") == b"\r\n+CME ERROR: 21\r\n"  # channel lost

    control.sim_busy(300)
    assert command(port, 'AT+CSIM=10,"0070000001"', b"14\r\n") == b"\r\n+CME ERROR: 14\r\n"
    time.sleep(0.35)
    assert command(port, 'AT+CSIM=10,"0070000001"', b"OK\r\n") == b'\r\n+CSIM: 6,"019000"\r\n\r\nOK\r\n'

    control.card_reset()
    assert command(port, 'AT+CSIM=10,"81CB010000"', b"READY\r\n") == b"\r\n+CME ERROR: 13\r\n\r\n+CPIN: READY\r\n"

    control.reboot()
    assert read_until(port, b"+CPIN: READY\r\n") == b"\r\nRDY\r\n\r\n+CPIN: READY\r\n"
    assert command(port, "AT", b"OK\r\n") == b"AT\r\r\nOK\r\n"  # echo is on again after a reboot


@pytest.mark.timeout(30)
def test_network_drop(start_modem):
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(3)
    try:
        _, port, control = start_modem("quectel")
        assert command(port, "AT+QIACT=1", b"OK\r\n") == b"\r\nOK\r\n"
        line = f'AT+QIOPEN=1,0,"TCP","127.0.0.1",{server.getsockname()[1]},0,0'
        assert command(port, line, b"+QIOPEN: 0,0\r\n") == b"\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n"
        peer, _ = server.accept()
        peer.settimeout(3)
        assert control.status()["sockets"]["connections"]["0"]["connected"]
        control.network_drop(0)
        assert read_until(port, b'"closed",0\r\n') == b'\r\n+QIURC: "closed",0\r\n'
        assert peer.recv(10) == b""
        with pytest.raises(FaultControlError, match="no open connection"):
            control.network_drop(0)
        peer.close()
    finally:
        server.close()


@pytest.mark.timeout(30)
def test_bad_requests_are_refused_and_harmless(start_modem, tmp_path):
    info, port, control = start_modem()
    with pytest.raises(FaultControlError, match="expected"):
        control.request("explode")
    with pytest.raises(FaultControlError, match="ms must be"):
        control.delay(-5)
    with socket.socket(socket.AF_UNIX) as raw:
        raw.settimeout(3)
        raw.connect(info["control"])
        raw.sendall(b"this is not json\n")
        assert json.loads(raw.makefile().readline())["ok"] is False
    assert command(port, "AT", b"OK\r\n") == b"\r\nOK\r\n"
    with pytest.raises(FaultControlError, match="cannot reach"):
        FaultControl(tmp_path / "nothing.ctl")
