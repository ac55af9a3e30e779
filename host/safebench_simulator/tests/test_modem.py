"""Modem core: AT framing, echo, CME errors, AT+CSIM round trips, trace, robustness."""

import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from safebench_simulator.card import Card
from safebench_simulator.modem import Modem


@pytest.fixture
def card_path(tmp_path):
    path = tmp_path / "card.json"
    Card.new(iccid="8949000000000000001", imsi="001010000000001").save(path)
    return path


@pytest.fixture
def modem(card_path):
    return Modem(card_path)


def at(modem, line):
    return modem.feed(line.encode() + b"\r").decode()


def csim(modem, apdu_hex):
    """Send one APDU with echo off; returns the response hex."""
    reply = at(modem, f'AT+CSIM={len(apdu_hex)},"{apdu_hex}"')
    assert reply.startswith('\r\n+CSIM: ') and reply.endswith('"\r\n\r\nOK\r\n'), reply
    length, text = reply.split("+CSIM: ")[1].split("\r\n")[0].split(",")
    assert int(length) == len(text) - 2
    return text.strip('"')


def test_startup_urcs(modem):
    assert modem.startup() == b"\r\nRDY\r\n\r\n+CPIN: READY\r\n"


def test_echo_on_by_default_then_off(modem):
    assert at(modem, "AT") == "AT\r\r\nOK\r\n"
    assert at(modem, "ATE0") == "ATE0\r\r\nOK\r\n"  # the command itself is still echoed
    assert at(modem, "AT") == "\r\nOK\r\n"
    assert at(modem, "ATE1") == "\r\nOK\r\n"
    assert at(modem, "at") == "at\r\r\nOK\r\n"


def test_line_assembly(modem):
    at(modem, "ATE0")
    assert modem.feed(b"A") == b"" and modem.feed(b"T+CI") == b""
    assert modem.feed(b"MI\r\n") == b"\r\n001010000000001\r\n\r\nOK\r\n"  # \n ignored
    assert modem.feed(b"\r\n\r") == b""  # empty lines are ignored
    assert modem.feed(b"ATX\x08\r") == b"\r\nOK\r\n"  # backspace
    assert modem.feed(b"AT" + b"1" * 2000 + b"\r") == b"\r\nERROR\r\n"  # too long
    assert at(modem, "AT") == "\r\nOK\r\n"


def test_identity_commands(modem):
    at(modem, "ATE0")
    assert at(modem, "AT+CPIN?") == "\r\n+CPIN: READY\r\n\r\nOK\r\n"
    assert at(modem, "AT+CIMI") == "\r\n001010000000001\r\n\r\nOK\r\n"
    assert at(modem, "AT+CCID") == "\r\n+CCID: 8949000000000000001\r\n\r\nOK\r\n"
    assert at(modem, "AT+QCCID") == "\r\n+QCCID: 8949000000000000001\r\n\r\nOK\r\n"
    assert at(modem, "AT+CICCID") == "\r\n+ICCID: 8949000000000000001\r\n\r\nOK\r\n"
    assert at(modem, "ATI").startswith("\r\nsafebench\r\n") and at(modem, "ATI").endswith("\r\n\r\nOK\r\n")
    assert at(modem, "AT+CFUN?") == "\r\n+CFUN: 1\r\n\r\nOK\r\n"
    assert at(modem, "AT+CFUN=4,0") == "\r\nOK\r\n"
    assert at(modem, "AT+CFUN?") == "\r\n+CFUN: 4\r\n\r\nOK\r\n"
    assert at(modem, "AT+CSQ") == "\r\n+CSQ: 99,99\r\n\r\nOK\r\n"


def test_errors_follow_cmee(modem):
    at(modem, "ATE0")
    assert at(modem, "AT+CSIM=9,\"0070000\"") == "\r\nERROR\r\n"
    assert at(modem, "AT+CMEE=1") == "\r\nOK\r\n"
    assert at(modem, "AT+CMEE?") == "\r\n+CMEE: 1\r\n\r\nOK\r\n"
    for bad in ('AT+CSIM=9,"0070000"', 'AT+CSIM=10,"00700000"', 'AT+CSIM=10,"007000000G"',
                'AT+CSIM=4,"0070"', "AT+CSIM=10", "AT+CFUN=7"):
        assert at(modem, bad) == "\r\n+CME ERROR: 50\r\n", bad
    assert at(modem, "AT+CMEE=2") == "\r\nOK\r\n"
    assert at(modem, 'AT+CSIM=9,"0070000"') == "\r\n+CME ERROR: incorrect parameters\r\n"
    assert at(modem, "AT+CMEE=5") == "\r\n+CME ERROR: incorrect parameters\r\n"
    assert at(modem, "AT+NOPE") == "\r\nERROR\r\n"  # unknown commands are plain ERROR
    assert at(modem, "HELLO") == "\r\nERROR\r\n"
    assert at(modem, "AT+CSIM?") == "\r\nERROR\r\n"


def test_csim_sign_round_trip(modem, card_path):
    """Channel, SELECT, sign with 61xx + GET RESPONSE, close: the wolfSSL/atsign flow over AT."""
    at(modem, "ATE0")
    assert csim(modem, "0070000001") == "019000"
    assert csim(modem, "01A4040007A0000005590010") == "9000"
    assert csim(modem, "812A00010D840101A1010391020001920104") == "9000"
    digest = hashlib.sha256(b"hello world").digest()
    assert csim(modem, "812B8001229E20" + digest.hex()) == "6142"
    response = bytes.fromhex(csim(modem, "81C0000042"))
    assert response[-2:] == b"\x90\x00" and response[:2] == b"\x33\x40"
    signature = encode_dss_signature(int.from_bytes(response[2:34], "big"), int.from_bytes(response[34:66], "big"))
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), Card.load(card_path).public_key(b"\x01"))
    public.verify(signature, b"hello world", ec.ECDSA(hashes.SHA256()))
    assert csim(modem, "812A010100") == "9000"
    assert csim(modem, "0070800100") == "9000"
    assert csim(modem, "81CB000044") == "6881"
    assert at(modem, 'AT+CSIM=10, "0070000000"') == '\r\n+CSIM: 6,"019000"\r\n\r\nOK\r\n'  # atsign's space
    assert at(modem, "AT+CSIM=10,0070800100") == '\r\n+CSIM: 4,"9000"\r\n\r\nOK\r\n'  # unquoted
    assert csim(modem, "01a4040007a0000005590010") == "6881"  # lower-case hex accepted


def test_trace(card_path, tmp_path):
    trace = tmp_path / "trace.jsonl"
    modem = Modem(card_path, trace_path=trace)
    modem.startup()
    at(modem, "ATE0")
    at(modem, 'AT+CSIM=10,"0070000001"')
    modem.close()
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [r["dir"] for r in records] == ["at<", "at<", "at>", "at<", "at>", "apdu>", "apdu<", "at<", "at<"]
    assert records[5] == {"t": records[5]["t"], "dir": "apdu>", "ch": 0, "hex": "0070000001"}
    assert records[6]["hex"] == "019000"
    assert records[7]["line"] == '+CSIM: 6,"019000"'
    assert all(isinstance(r["t"], float) for r in records)


def test_never_crashes(modem, monkeypatch):
    at(modem, "ATE0")

    def broken(apdu):
        raise RuntimeError("simulator bug")

    monkeypatch.setattr(modem.uicc, "transmit", broken)
    assert at(modem, 'AT+CSIM=10,"0070000001"') == "\r\nERROR\r\n"
    monkeypatch.undo()
    for junk in (bytes(range(256)), b"AT+CSIM=99999999999999999999,\"\"\r", b"AT+\r", b"AT+CSIM=,\r", b"\xff\xfe\r"):
        modem.feed(junk)  # must not raise
    assert at(modem, "AT") == "\r\nOK\r\n"
