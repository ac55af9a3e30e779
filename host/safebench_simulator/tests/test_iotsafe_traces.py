"""Real-card traces replayed against the profiles that model those cards (docs/iotsafe.md §9.1, §9.2).

Key values differ (our keys are fresh), so responses that carry keys or signatures are compared by
shape and checked cryptographically; everything else is compared byte for byte.
"""

import hashlib
import json
import re

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from safebench_simulator.card import Card
from safebench_simulator.iotsafe import IoTSafeApplet
from safebench_simulator.uicc import Uicc

MESSAGE = bytes.fromhex("0102030405060708")
MVP_KEY_PREFIX = bytes.fromhex("84020002 85020002 344549438641")


def read_trace(path):
    """[(command, response)] from a C:/R: trace file."""
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    pairs = list(zip(lines[0::2], lines[1::2], strict=True))
    assert all(c.startswith("C: ") and r.startswith("R: ") for c, r in pairs)
    return [(bytes.fromhex(c[3:]), bytes.fromhex(r[3:])) for c, r in pairs]


def pcsc(uicc, apdu):
    """What a PC/SC stack shows: it fetches 61xx answers with GET RESPONSE by itself."""
    response = uicc.transmit(apdu)
    while response[-2] == 0x61:
        response = response[:-2] + uicc.transmit(bytes((apdu[0] & 0x03, 0xC0, 0x00, 0x00, response[-1])))
    return response


def mvp():
    card = Card.new("thales-mvp")
    return card, Uicc(card, {card.aid: IoTSafeApplet(card)})


def test_thales_mvp_trace_1_sign_and_verify(vectors, verify):
    card, uicc = mvp()
    trace = read_trace(vectors.path("thales_mvp_trace1.txt"))
    recorded_signature = trace[5][1][2:-2]
    seen = {}  # our public key and signature, for the later commands
    for command, recorded in trace:
        ins = command[1]
        if ins == 0x2D:  # verify: the recorded signature is under the recorded key, not ours
            assert pcsc(uicc, command)[-2:] == b"\x6d\x01"
            command = command.replace(recorded_signature, seen["signature"])
        got = pcsc(uicc, command)
        assert got[-2:] == recorded[-2:], command.hex()
        if ins == 0x84:
            assert len(got) == len(recorded) == 18
        elif ins == 0xB9:
            assert got[: len(MVP_KEY_PREFIX)] == recorded[: len(MVP_KEY_PREFIX)] == MVP_KEY_PREFIX
            assert len(got) == len(recorded) == 79 + 2
            seen["public"] = got[14:-2]
            assert seen["public"] == card.public_key(bytes.fromhex("0002"))
        elif ins == 0x2B:
            assert got[:2] == recorded[:2] == b"\x33\x40" and len(got) == len(recorded)
            verify(seen["public"], got[:-2], message=MESSAGE)  # our signature for the same command verifies
            seen["signature"] = got[2:-2]
        else:
            assert got == recorded, command.hex()


def test_thales_mvp_recorded_signature_verifies_on_the_card(vectors):
    """The recorded key goes into the empty public key 0003; the card then accepts the recorded signature."""
    card, uicc = mvp()
    trace = dict(read_trace(vectors.path("thales_mvp_trace1.txt")))
    v = json.loads(vectors.path("thales_mvp_sign_full_text.json").read_text())
    recorded_key, recorded_sig = bytes.fromhex(v["public_key"]), bytes.fromhex(v["response"])[2:]
    r, s = int.from_bytes(recorded_sig[:32], "big"), int.from_bytes(recorded_sig[32:], "big")
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), recorded_key).verify(
        encode_dss_signature(r, s), MESSAGE, ec.ECDSA(hashes.SHA256())
    )
    assert pcsc(uicc, next(iter(trace))) == b"\x90\x00"  # SELECT
    value = bytes.fromhex("4943 8641") + recorded_key
    assert pcsc(uicc, bytes.fromhex("8024000004 85020003")) == b"\x90\x00"
    assert pcsc(uicc, bytes.fromhex("80D8800047 3445") + value) == b"\x90\x00"
    assert pcsc(uicc, bytes.fromhex("80240100")) == b"\x90\x00"
    assert pcsc(uicc, bytes.fromhex("802C00010E 85020003 A10101 91020001 920104")) == b"\x90\x00"
    update = bytes.fromhex("802D80014C 9B08") + MESSAGE + b"\x33\x40" + recorded_sig
    assert pcsc(uicc, update) == b"\x90\x00"
    assert pcsc(uicc, update[:-1] + bytes((update[-1] ^ 1,))) == b"\x6d\x01"


def test_thales_mvp_trace_2_layouts_exact(vectors):
    """Public key information, applet information and object list: the card's bytes exactly."""
    card, uicc = mvp()
    assert pcsc(uicc, bytes.fromhex("00A404000F") + card.aid) == b"\x90\x00"
    for command, recorded in read_trace(vectors.path("thales_mvp_trace2.txt")):
        got = pcsc(uicc, command)
        if command[1] == 0xB9:
            assert got[: len(MVP_KEY_PREFIX)] == MVP_KEY_PREFIX and len(got) == len(recorded)
        else:
            assert got.hex().upper() == recorded.hex().upper(), command.hex()
    assert vectors.path("thales_mvp_application_info.hex").read_text().split("\n")[-2] in pcsc(
        uicc, bytes.fromhex("80CB000044")
    ).hex().upper()


def zariot_steps(path):
    steps = []
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            command, expected = line.rsplit(" -> ", 1)
            steps.append((command, expected.replace(" ", "")))
    return steps


def test_zariot_sequence_shapes(vectors, verify):
    """61 51 (B9), 61 43 (33 00 40 + r||s), 61 47 (read public key), 61 10 (PRF): the ZARIOT lengths."""
    card = Card.new("zariot")
    uicc = Uicc(card, {card.aid: IoTSafeApplet(card)})
    digest = hashlib.sha256(b"hello world").digest()
    seen = {}
    replayed = 0
    for command, expected in zariot_steps(vectors.path("zariot_sequence.txt")):
        if command.startswith("<verify"):
            apdu = bytes.fromhex("812D800265 9E20") + digest + bytes.fromhex("330040") + seen["signature"]
        elif command.startswith("<prf"):
            apdu = (
                bytes.fromhex("8148000032 D120")
                + bytes(range(32))
                + bytes.fromhex("D20B")
                + b"label+seed"
                + b"!"
                + bytes.fromhex("D30110")
            )
        else:
            apdu = bytes.fromhex(command)
        got = uicc.transmit(apdu).hex().upper()
        prefix, _, sw = re.fullmatch(r"(.*?)(\.\.\.)?([0-9A-F]{4})", expected).groups()
        assert got.endswith(sw) and got.startswith(prefix), (command, got)
        if apdu[1] == 0xC0:
            assert len(got) // 2 - 2 == apdu[4]
            if apdu[4] == 0x43:
                seen["signature"] = bytes.fromhex(got[6:-4])
                verify(card.public_key(b"006"), bytes.fromhex(got[:-4]), digest=digest)
            if apdu[4] == 0x51:
                assert bytes.fromhex(got[32:-4]) == card.public_key(b"007")
        replayed += 1
    assert replayed == 16


@pytest.mark.parametrize(
    "apdu, expected",
    [
        ("81B90000058403303036", "6151"),
        ("81CD0000058503303037", "6147"),
    ],
)
def test_zariot_three_byte_ascii_ids(apdu, expected):
    card = Card.new("zariot")
    uicc = Uicc(card, {card.aid: IoTSafeApplet(card)})
    assert uicc.transmit(bytes.fromhex("00A4040007A0000005590010")) == b"\x90\x00"
    assert uicc.transmit(bytes.fromhex("80" + apdu[2:])).hex().upper() == expected
