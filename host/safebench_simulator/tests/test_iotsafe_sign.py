"""Compute Signature mode 02 (last block) and the 2-byte tag-33 form; Verify Signature Init/Update."""

import hashlib
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from safebench_simulator import sha2
from safebench_simulator.card import Card
from safebench_simulator.iotsafe import IoTSafeApplet

ALGORITHMS = {
    0x0001: (hashes.SHA256(), sha2.SHA256),
    0x0002: (hashes.SHA384(), sha2.SHA384),
    0x0004: (hashes.SHA512(), sha2.SHA512),
}


def tlv(tag, value):
    return bytes((tag, len(value))) + value


@pytest.mark.parametrize("name", ["sha256", "sha384", "sha512"])
def test_sha2_resume_matches_hashlib(name):
    v = sha2.VARIANTS[name]
    for n in (0, 1, v.block_size - 9, v.block_size - 8, v.block_size, 3 * v.block_size + 17):
        message = os.urandom(n)
        cut = n - n % v.block_size
        assert (
            sha2.finish(v, sha2.intermediate(v, message[:cut]), cut, message[cut:])
            == hashlib.new(name, message).digest()
        )
    with pytest.raises(ValueError):
        sha2.finish(v, bytes(v.state_size), 3, b"")  # not a whole number of blocks
    with pytest.raises(ValueError):
        sha2.finish(v, bytes(v.state_size - 1), 0, b"")


@pytest.mark.parametrize("hash_id", sorted(ALGORITHMS))
def test_mode_02_last_block(applet, card, hash_id, run, verify):
    """The host hashes whole blocks, the card finishes: the signature is over the whole message."""
    algorithm, variant = ALGORITHMS[hash_id]
    message = os.urandom(5 * variant.block_size + 77)
    cut = 5 * variant.block_size
    state = sha2.intermediate(variant, message[:cut])
    init = f"840101 A10102 9102{hash_id:04X} 920104"
    assert run(applet, 0x81, 0x2A, 0x00, 0x01, init) == (b"", 0x9000)
    update = (tlv(0x9A, message[cut:]) + tlv(0x9C, state) + tlv(0x9D, cut.to_bytes(4, "big"))).hex()
    assert run(applet, 0x81, 0x2B, 0x00, 0x01, update) == (b"", 0x6A86)  # mode 02 is one block
    response, sw = run(applet, 0x81, 0x2B, 0x80, 0x01, update)
    assert sw == 0x9000
    verify(card.public_key(b"\x01"), response, message=message, algorithm=algorithm)
    bad_count = (tlv(0x9A, b"x") + tlv(0x9C, state) + tlv(0x9D, (cut + 1).to_bytes(4, "big"))).hex()
    assert run(applet, 0x81, 0x2B, 0x80, 0x01, bad_count) == (b"", 0x6A80)  # not a block boundary
    short_state = (tlv(0x9A, b"x") + tlv(0x9C, state[:-1]) + tlv(0x9D, bytes(4))).hex()
    assert run(applet, 0x81, 0x2B, 0x80, 0x01, short_state) == (b"", 0x6A80)
    assert run(applet, 0x81, 0x2B, 0x80, 0x01, tlv(0x9A, b"x").hex()) == (b"", 0x6A80)  # 9C, 9D missing
    too_long = (tlv(0x9A, bytes(129)) + tlv(0x9C, state) + tlv(0x9D, bytes(4))).hex()
    assert run(applet, 0x81, 0x2B, 0x80, 0x01, too_long) == (b"", 0x6A80)


def test_two_byte_signature_length_form(run, verify):
    card = Card.new("zariot")
    applet = IoTSafeApplet(card)
    digest = hashlib.sha256(b"hello world").digest()
    assert run(applet, 0x81, 0x2A, 0x00, 0x01, "8403303036 A10103 91020001 920104")[1] == 0x9000
    response, sw = run(applet, 0x81, 0x2B, 0x80, 0x01, "9E20" + digest.hex())
    assert sw == 0x9000 and response[:3] == b"\x33\x00\x40" and len(response) == 67
    verify(card.public_key(b"006"), response, message=b"hello world")


def sign_digest(card, digest, algorithm=None):
    """A raw r||s signature with the card's key 01, made inside the test (as a peer would)."""
    key = card._private_key(b"\x01")
    r, s = decode_dss_signature(key.sign(digest, ec.ECDSA(Prehashed(algorithm or hashes.SHA256()))))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@pytest.mark.parametrize("form", ["3340", "330040"])
def test_verify_pad_and_sign(applet, card, form, run):
    digest = hashlib.sha256(b"to verify").digest()
    signature = sign_digest(card, digest)
    assert run(applet, 0x81, 0x2C, 0x00, 0x02, "850101 A10103 91020001 920104") == (b"", 0x9000)
    update = "9E20" + digest.hex() + form + signature.hex()
    assert run(applet, 0x81, 0x2D, 0x80, 0x02, update) == (b"", 0x9000)
    tampered = bytearray(signature)
    tampered[5] ^= 1
    assert run(applet, 0x81, 0x2D, 0x80, 0x02, "9E20" + digest.hex() + form + tampered.hex()) == (b"", 0x6D01)
    zero = "9E20" + digest.hex() + form + "00" * 64  # r = s = 0 is no signature at all
    assert run(applet, 0x81, 0x2D, 0x80, 0x02, zero) == (b"", 0x6D01)
    assert run(applet, 0x81, 0x2D, 0x80, 0x02, "9E20" + digest.hex()) == (b"", 0x6A80)  # no 33
    assert run(applet, 0x81, 0x2D, 0x80, 0x02, "9E20" + digest.hex() + "3320" + signature[:32].hex()) == (
        b"",
        0x6A80,
    )
    assert run(applet, 0x81, 0x2C, 0x01, 0x02) == (b"", 0x9000)
    assert run(applet, 0x81, 0x2D, 0x80, 0x02, update) == (b"", 0x6A86)  # closed


def test_verify_full_text_multi_block(applet, card, run):
    message = os.urandom(600)
    signature = sign_digest(card, hashlib.sha256(message).digest())
    assert run(applet, 0x01, 0x2C, 0x00, 0x01, "850101 A10101 91020001 920104")[1] == 0x9000
    for i in range(0, 500, 250):
        block = message[i : i + 250]
        assert run(applet, 0x01, 0x2D, 0x00, 0x01, tlv(0x9B, block).hex()) == (b"", 0x9000)
    sig_in_middle = tlv(0x9B, b"x").hex() + "3340" + signature.hex()
    assert run(applet, 0x01, 0x2D, 0x00, 0x01, sig_in_middle) == (b"", 0x6A80)  # 33 only in the last block
    last = tlv(0x9B, message[500:]).hex() + "3340" + signature.hex()
    assert run(applet, 0x01, 0x2D, 0x80, 0x01, last) == (b"", 0x9000)
    # the next message starts afresh; the last block may hold only the signature
    assert run(applet, 0x01, 0x2D, 0x00, 0x01, tlv(0x9B, message[:200]).hex()) == (b"", 0x9000)
    assert run(
        applet,
        0x01,
        0x2D,
        0x80,
        0x01,
        "3340" + sign_digest(card, hashlib.sha256(message[:200]).digest()).hex(),
    ) == (b"", 0x9000)


def test_verify_with_sha384_mode_02(applet, card, run):
    message = os.urandom(300)
    state = sha2.intermediate(sha2.SHA384, message[:256])
    signature = sign_digest(card, hashlib.sha384(message).digest(), hashes.SHA384())
    assert run(applet, 0x81, 0x2C, 0x00, 0x01, "850101 A10102 91020002 920104")[1] == 0x9000
    update = (
        tlv(0x9A, message[256:])
        + tlv(0x9C, state)
        + tlv(0x9D, (256).to_bytes(4, "big"))
        + b"\x33\x40"
        + signature
    )
    assert run(applet, 0x81, 0x2D, 0x80, 0x01, update.hex()) == (b"", 0x9000)


@pytest.mark.parametrize(
    "init, sw",
    [
        ("850105 A10103 91020001 920104", 0x6985),  # the peer container is empty
        ("850109 A10103 91020001 920104", 0x6A82),
        ("840101 A10103 91020001 920104", 0x6A80),  # a private key reference: not allowed for verify
        ("850101 A10103 91020010 920104", 0x6A80),
    ],
)
def test_verify_init_errors(applet, init, sw, run):
    assert run(applet, 0x81, 0x2C, 0x00, 0x01, init) == (b"", sw)


def test_update_of_the_wrong_kind_of_session(applet, run):
    assert run(applet, 0x81, 0x2A, 0x00, 0x01, "840101 A10103 91020001 920104")[1] == 0x9000
    assert run(applet, 0x81, 0x2D, 0x80, 0x01, "9E20" + "00" * 32 + "3340" + "11" * 64) == (b"", 0x6A86)
    assert run(applet, 0x81, 0x2C, 0x01, 0x01) == (b"", 0x9000)  # a verify close leaves the sign session
    assert run(applet, 0x81, 0x2B, 0x80, 0x01, "9E20" + "00" * 32)[1] == 0x9000
