"""Compute PRF (TLS 1.2 P_SHA256) and Compute HKDF (RFC 5869 Extract): published vectors and errors."""

import hashlib
import hmac
import json

import pytest

from safebench_simulator.card import Card
from safebench_simulator.iotsafe import IoTSafeApplet
from safebench_simulator.uicc import Uicc


def tlv(tag, value):
    return bytes((tag, len(value))) + value


def independent_prf(secret, label_seed, length):
    """RFC 5246 section 5, written out here independently of the simulator."""
    a, out = label_seed, b""
    while len(out) < length:
        a = hmac.digest(secret, a, "sha256")
        out += hmac.digest(secret, a + label_seed, "sha256")
    return out[:length]


@pytest.fixture
def uicc(card, applet):
    uicc = Uicc(card, {card.aid: applet})
    assert uicc.transmit(bytes.fromhex("00A4040007") + card.aid) == b"\x90\x00"
    return uicc


def test_prf_thales_vectors_exact(uicc, vectors):
    """The APDU in Thales' encoding (CLA 00, P1 00 general mode, Le 00): 61xx, then GET RESPONSE.

    Thales' vectors: the extended master secret, then a 255-byte key expansion."""
    thales = json.loads(vectors.path("prf_thales.json").read_text())["vectors"]
    assert [v["length"] for v in thales] == [48, 255]
    for vector in thales:
        body = (
            tlv(0xD1, bytes.fromhex(vector["secret"]))
            + tlv(0xD2, bytes.fromhex(vector["label"] + vector["seed"]))
            + tlv(0xD3, bytes((vector["length"],)))
        )
        apdu = bytes.fromhex("00480000") + bytes((len(body),)) + body + b"\x00"
        assert apdu[:5].hex().upper() == vector["apdu_prefix"]
        n = vector["length"]
        assert uicc.transmit(apdu) == bytes((0x61, n))
        response = uicc.transmit(bytes((0x00, 0xC0, 0x00, 0x00, n)))
        assert response[-2:] == b"\x90\x00"
        assert response[:-2].hex().upper() == vector["output"]


def test_prf_on_card_secret(applet, card, run):
    secret = card._secret(b"\x06")
    assert len(secret) == 32
    out, sw = run(applet, 0x81, 0x48, 0x01, 0x00, "860106 D20A" + b"label+seed".hex() + "D30140")
    assert sw == 0x9000 and out == independent_prf(secret, b"label+seed", 64)
    by_label, _ = run(
        applet,
        0x81,
        0x48,
        0x01,
        0x00,
        "760B" + b"hmac-secret".hex() + "D20A" + b"label+seed".hex() + "D30140",
    )
    assert by_label == out


def test_prf_psk_ecdhe(applet, card, run):
    """Mode 02: the pre-master secret of RFC 5489 from the ECDHE output (D4) and the PSK on the card."""
    psk, ecdhe = card._secret(b"\x06"), bytes(range(32))
    premaster = len(ecdhe).to_bytes(2, "big") + ecdhe + len(psk).to_bytes(2, "big") + psk
    out, sw = run(applet, 0x81, 0x48, 0x02, 0x00, "860106 D420" + ecdhe.hex() + "D20401020304 D30130")
    assert sw == 0x9000 and out == independent_prf(premaster, bytes.fromhex("01020304"), 48)


@pytest.mark.parametrize(
    "p1, data, sw",
    [
        (0x00, "D20101 D30110", 0x6A80),  # general mode without a secret
        (0x00, "D10101 860106 D20101 D30110", 0x6A80),  # general mode with a reference
        (0x00, "D10101 D20101 D30100", 0x6A80),  # zero output bytes
        (0x00, "D10101 D20101 D3020010", 0x6A80),  # two-byte length
        (0x00, "D10101 D30110", 0x6A80),  # no label and seed
        (0x01, "D10101 D20101 D30110", 0x6A80),  # referenced mode with a clear secret
        (0x01, "860109 D20101 D30110", 0x6A82),
        (0x01, "860106 D40101 D20101 D30110", 0x6A80),  # D4 belongs to mode 02
        (0x02, "860106 D20101 D30110", 0x6A80),  # mode 02 without D4
        (0x03, "D10101 D20101 D30110", 0x6A86),
        (0x00, "", 0x6700),
    ],
)
def test_prf_errors(applet, p1, data, sw, run):
    assert run(applet, 0x81, 0x48, p1, 0x00, data) == (b"", sw)


def test_prf_needs_a_filled_secret_with_prf(run):
    mvp = IoTSafeApplet(Card.new("thales-mvp"))  # secret 0004 "33" is empty
    assert run(mvp, 0x80, 0x48, 0x01, 0x00, "86020004 D20101 D30110") == (b"", 0x6985)
    card = Card.new()
    card._containers["secret_key"][b"\x06"].attributes["key_derivation"] = b"\x02"  # HKDF only
    assert run(IoTSafeApplet(card), 0x81, 0x48, 0x01, 0x00, "860106 D20101 D30110") == (b"", 0x6985)


def test_hkdf_rfc5869_extract_exact(uicc, vectors):
    """RFC 5869 appendix A, cases 1-3 (SHA-256): the Extract step gives the published PRK."""
    cases = vectors.load("hkdf_rfc5869.txt")
    assert len(cases) == 3
    for case, vector in enumerate(cases, 1):
        # Case 3 has no salt, which RFC 5869 2.2 defines as HashLen zeros; the card rejects an empty D5
        # (as Thales' applet does), so that case is sent with the equivalent salt.
        salt = vector["salt"] or bytes(32)
        body = tlv(0xD1, vector["ikm"]) + tlv(0xD5, salt) + bytes.fromhex("91020001")
        assert uicc.transmit(bytes.fromhex("804A0000") + bytes((len(body),)) + body) == b"\x61\x20", case
        assert uicc.transmit(bytes.fromhex("00C0000020")) == vector["prk"] + b"\x90\x00", case


@pytest.mark.parametrize("hash_id, name", [(0x0002, "sha384"), (0x0004, "sha512")])
def test_hkdf_longer_hashes(applet, hash_id, name, run):
    ikm, salt = b"input keying material", b"some salt"
    prk, sw = run(
        applet, 0x81, 0x4A, 0x00, 0x00, (tlv(0xD1, ikm) + tlv(0xD5, salt)).hex() + f"9102{hash_id:04X}"
    )
    assert sw == 0x9000 and prk == hmac.digest(salt, ikm, name) and len(prk) == hashlib.new(name).digest_size


def test_hkdf_on_card_secret(applet, card, run):
    prk, sw = run(applet, 0x81, 0x4A, 0x00, 0x00, "860106 D50401020304 91020001")
    assert sw == 0x9000 and prk == hmac.digest(bytes.fromhex("01020304"), card._secret(b"\x06"), "sha256")


@pytest.mark.parametrize(
    "data, sw",
    [
        ("D10101 D500 91020001", 0x6A80),  # empty salt: rejected like the Thales applet
        ("D10101 91020001", 0x6A80),  # no salt
        ("D10101 D50101 91020008", 0x6A80),  # unknown hash
        ("D10101 D50101", 0x6A80),  # no hash
        ("D10101 860106 D50101 91020001", 0x6A80),  # both a clear and a referenced secret
        ("860109 D50101 91020001", 0x6A82),
        ("", 0x6700),
    ],
)
def test_hkdf_errors(applet, data, sw, run):
    assert run(applet, 0x81, 0x4A, 0x00, 0x00, data) == (b"", sw)
    assert run(applet, 0x81, 0x4A, 0x01, 0x00, "D10101 D50101 91020001") == (b"", 0x6A86)
