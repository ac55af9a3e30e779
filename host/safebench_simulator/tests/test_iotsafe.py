"""IoT SAFE applet: GET DATA, READ FILE, GET RANDOM, COMPUTE SIGNATURE (ECDSA P-256), the private-key sweep."""

import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes

from safebench_simulator.card import Card
from safebench_simulator.iotsafe import IoTSafeApplet

SIGN_INIT_SHA256 = "8401 01 A10103 91020001 920104"  # key 01, pad-and-sign, SHA-256, ECDSA
SIGN_INIT_FULL_TEXT = "8401 01 A10101 91020001 920104"


@pytest.fixture
def card():
    """A card with 600 bytes in file 02 (the client certificate), to read in chunks."""
    card = Card.new()
    card.set_file(b"\x02", bytes(i & 0xFF for i in range(600)))
    return card


def tags(data):
    out, i = [], 0
    while i < len(data):
        out.append(data[i])
        i += 2 + data[i + 1]
    return out


def test_real_card_signature_format_is_raw_r_s(vectors, verify):
    """Our verify() helper accepts what a real card returned, so the format we emit is the card's."""
    v = json.loads(vectors.path("thales_mvp_sign_full_text.json").read_text())
    verify(bytes.fromhex(v["public_key"]), bytes.fromhex(v["response"]), message=bytes.fromhex(v["message"]))


def test_application_info_matches_thales_mvp_layout(applet, run, vectors):
    data, sw = run(applet, 0x80, 0xCB, 0x00, 0x00, le=0x44)
    assert sw == 0x9000 and len(data) == 0x44
    card_hex = vectors.path("thales_mvp_application_info.hex").read_text().split("\n")[-2]
    assert tags(data) == tags(bytes.fromhex(card_hex))
    assert data[data.index(b"\xB7\x01"):] == b"\xB7\x01\x01"  # one session
    assert b"\x91\x02\x00\x07" in data  # SHA-256, SHA-384, SHA-512


def test_file_info(applet, card, run):
    data, sw = run(applet, 0x81, 0xCB, 0xC3, 0x00, "830102")
    assert sw == 0x9000
    assert data == bytes.fromhex("730B") + b"client-cert" + bytes.fromhex("830102 600101 4A0101 210102 20020258")
    by_label, _ = run(applet, 0x01, 0xCB, 0xC3, 0x00, "7307" + b"ca-cert".hex())
    assert by_label.endswith(bytes.fromhex("4A0100 210102 20020000"))  # empty file: state 00, size 0


def test_key_info(applet, run):
    data, sw = run(applet, 0x81, 0xCB, 0xC1, 0x00, "840101")
    assert sw == 0x9000
    assert tags(data) == [0x74, 0x84, 0x60, 0x4A, 0x4B, 0x4E, 0x61, 0x92, 0x91, 0x6F]
    assert bytes.fromhex("4A0101 4B0113") in data
    data, sw = run(applet, 0x81, 0xCB, 0xC2, 0x00, "850105")
    assert sw == 0x9000 and bytes.fromhex("4A0100") in data  # peer key container is empty
    assert run(applet, 0x81, 0xCB, 0xC2, 0x00, "850109") == (b"", 0x6A82)
    assert run(applet, 0x81, 0xCB, 0xC2, 0x00, "850101 7501AA") == (b"", 0x6A80)  # id and label
    assert run(applet, 0x81, 0xCB, 0xC2, 0x00, "8502") == (b"", 0x6A80)  # truncated TLV
    assert run(applet, 0x81, 0xCB, 0xC2, 0x01, "850101") == (b"", 0x6A86)
    assert run(applet, 0x81, 0xCB, 0x07, 0x00) == (b"", 0x6A86)


def test_read_file_chunks_and_eof(applet, card, run):
    content = card.file(b"\x02")
    got, offset = b"", 0
    while True:
        data, sw = run(applet, 0x81, 0xB0, offset >> 8, offset & 0xFF, "830102")
        if sw == 0x6B00:
            break
        assert sw == 0x9000 and len(data) == min(255, 600 - offset)
        got += data
        offset += len(data)
    assert got == content and offset == 600
    assert run(applet, 0x81, 0xB0, 0x00, 0x00, "830102", le=50)[0] == content[:50]
    assert run(applet, 0x81, 0xB0, 0x02, 0x57, "830102", le=50)[0] == content[599:]
    assert run(applet, 0x81, 0xB0, 0x00, 0x00, "830103") == (b"", 0x6B00)  # empty file
    assert run(applet, 0x81, 0xB0, 0x00, 0x00, "830109") == (b"", 0x6A82)
    assert run(applet, 0x81, 0xB0, 0x00, 0x00, "730B" + b"client-cert".hex(), le=4)[0] == content[:4]


def test_get_random(applet, run):
    a, sw = run(applet, 0x80, 0x84, 0x00, 0x00, le=16)
    b, _ = run(applet, 0x80, 0x84, 0x00, 0x00, le=16)
    assert sw == 0x9000 and len(a) == 16 and a != b
    assert len(run(applet, 0x80, 0x84, 0x00, 0x00, le=256)[0]) == 256
    assert run(applet, 0x80, 0x84, 0x00, 0x00) == (b"", 0x6700)
    assert run(applet, 0x80, 0x84, 0x01, 0x00, le=8) == (b"", 0x6A86)


def test_sign_pad_and_sign(applet, card, run, verify):
    digest = hashlib.sha256(b"hello world").digest()
    assert run(applet, 0x81, 0x2A, 0x00, 0x01, SIGN_INIT_SHA256) == (b"", 0x9000)
    response, sw = run(applet, 0x81, 0x2B, 0x80, 0x01, "9E20" + digest.hex())
    assert sw == 0x9000
    verify(card.public_key(b"\x01"), response, digest=digest)
    again, _ = run(applet, 0x81, 0x2B, 0x80, 0x01, "9E20" + digest.hex())  # session stays usable
    verify(card.public_key(b"\x01"), again, digest=digest)
    assert run(applet, 0x81, 0x2A, 0x01, 0x01) == (b"", 0x9000)
    assert run(applet, 0x81, 0x2B, 0x80, 0x01, "9E20" + digest.hex()) == (b"", 0x6A86)  # closed


def test_sign_sha384(applet, card, run, verify):
    digest = hashlib.sha384(b"abc").digest()
    assert run(applet, 0x01, 0x2A, 0x00, 0x00, "840101 A10103 91020002 920104")[1] == 0x9000
    assert run(applet, 0x01, 0x2B, 0x80, 0x00, "9E20" + digest[:32].hex()) == (b"", 0x6A80)  # wrong size
    response, sw = run(applet, 0x01, 0x2B, 0x80, 0x00, "9E30" + digest.hex())
    verify(card.public_key(b"\x01"), response, digest=digest, algorithm=hashes.SHA384())


def test_sign_full_text_multi_block(applet, card, run, verify):
    message = bytes(range(256)) * 3
    blocks = [message[i:i + 253] for i in range(0, len(message), 253)]
    assert run(applet, 0x81, 0x2A, 0x00, 0x01, SIGN_INIT_FULL_TEXT)[1] == 0x9000
    for block in blocks[:-1]:
        assert run(applet, 0x81, 0x2B, 0x00, 0x01, f"9B{len(block):02X}" + block.hex()) == (b"", 0x9000)
    response, sw = run(applet, 0x81, 0x2B, 0x80, 0x01, f"9B{len(blocks[-1]):02X}" + blocks[-1].hex())
    assert sw == 0x9000
    verify(card.public_key(b"\x01"), response, message=message)
    short, _ = run(applet, 0x81, 0x2B, 0x80, 0x01, "9B080102030405060708")  # next message starts fresh
    verify(card.public_key(b"\x01"), short, message=bytes.fromhex("0102030405060708"))


def test_second_init_is_6a86(applet, run):
    assert run(applet, 0x81, 0x2A, 0x00, 0x01, SIGN_INIT_SHA256)[1] == 0x9000
    assert run(applet, 0x81, 0x2A, 0x00, 0x01, SIGN_INIT_SHA256) == (b"", 0x6A86)
    assert run(applet, 0x82, 0x2A, 0x00, 0x02, SIGN_INIT_SHA256) == (b"", 0x6A86)  # max one session
    assert run(applet, 0x81, 0x2A, 0x01, 0x01, "") == (b"", 0x9000)
    assert run(applet, 0x81, 0x2A, 0x00, 0x01, SIGN_INIT_SHA256)[1] == 0x9000


def test_deselect_aborts_sessions(applet, run):
    assert run(applet, 0x81, 0x2A, 0x00, 0x01, SIGN_INIT_SHA256)[1] == 0x9000
    applet.deselect(2)
    assert run(applet, 0x81, 0x2B, 0x80, 0x01, "9E20" + "00" * 32)[1] == 0x9000
    applet.deselect(1)
    assert run(applet, 0x81, 0x2B, 0x80, 0x01, "9E20" + "00" * 32) == (b"", 0x6A86)


@pytest.mark.parametrize("init, sw", [
    ("840109 A10103 91020001 920104", 0x6A82),  # unknown key
    ("840104 A10103 91020001 920104", 0x6985),  # ephemeral key not generated yet
    ("840101 A10104 91020001 920104", 0x6A80),  # no mode 04
    ("840101 A10103 91020008 920104", 0x6A80),  # unknown hash
    ("840101 A10103 91020001 920101", 0x6A80),  # RSA
    ("840101 A10103 920104", 0x6A80),  # no hash TLV
    ("A10103 91020001 920104", 0x6A80),  # no key reference
    ("840101 A10103 910100 920104", 0x6A80),  # one-byte hash value
])
def test_sign_init_errors(applet, init, sw, run):
    assert run(applet, 0x81, 0x2A, 0x00, 0x01, init) == (b"", sw)


def test_sign_update_errors(applet, run):
    assert run(applet, 0x81, 0x2B, 0x80, 0x01, "9E20" + "00" * 32) == (b"", 0x6A86)  # no session
    assert run(applet, 0x81, 0x2A, 0x00, 0x01, SIGN_INIT_SHA256)[1] == 0x9000
    assert run(applet, 0x81, 0x2B, 0x00, 0x01, "9E20" + "00" * 32) == (b"", 0x6A86)  # mode 03 is one block
    assert run(applet, 0x81, 0x2B, 0x40, 0x01, "9E20" + "00" * 32) == (b"", 0x6A86)
    assert run(applet, 0x81, 0x2B, 0x80, 0x01, "9B0100") == (b"", 0x6A80)  # wrong tag for the mode


def test_class_and_instruction(applet, run):
    assert run(applet, 0xA0, 0x84, 0x00, 0x00, le=8) == (b"", 0x6E00)
    assert run(applet, 0x80, 0x47, 0x00, 0x00) == (b"", 0x6D00)
    assert run(applet, 0x80, 0x70, 0x00, 0x00) == (b"", 0x6D00)  # the vendor Get Version is the MVP profile's


def test_no_command_reveals_private_material(applet, card, run, private_material):
    """Every instruction, with references to every object, never answers a private scalar or secret."""
    refs = ["", "840101", "840104", "850101", "850105", "830102", "860106", "840101 850105",
            "860106 D50101 91020001",
            "D10101 D20101 D30120", "860106 D20101 D30120", "840104 A10103 91020001 920104"]
    assert run(applet, 0x81, 0xB9, 0x00, 0x00, "840104")[1] == 0x9000  # fill the ephemeral pair too
    secrets_ = private_material(card)
    assert len(secrets_) == 3  # key 01, key 04, secret 06
    for ins in range(256):
        for p1 in (0x00, 0x01, 0x02, 0x80, 0xC1, 0xC4):
            for data in refs:
                response, _ = run(applet, 0x81, ins, p1, 0x00, data, le=256)
                assert not any(secret in response for secret in secrets_), (ins, p1, data)
        applet.deselect(1)
        secrets_ = private_material(card) + secrets_  # B9 replaced some: old ones must not leak either


def test_secret_key_info(applet, run):
    data, sw = run(applet, 0x81, 0xCB, 0xC4, 0x00, "860106")
    assert sw == 0x9000
    expected = bytes.fromhex("760B") + b"hmac-secret" + bytes.fromhex("860106 600103 4A0101 4B01A0 610108 940103")
    assert data == expected
    assert run(applet, 0x81, 0xCB, 0xC4, 0x00, "840101") == (b"", 0x6A80)  # not a secret key reference


def test_read_file_needs_read_access(card, run):
    card._containers["file"][b"\x03"].attributes["access"] = b"\x02"  # update only
    card.set_file(b"\x03", b"hidden")
    assert run(IoTSafeApplet(card), 0x81, 0xB0, 0x00, 0x00, "830103") == (b"", 0x6982)
    assert run(IoTSafeApplet(card), 0x81, 0xB0, 0x00, 0x00, "") == (b"", 0x6700)
