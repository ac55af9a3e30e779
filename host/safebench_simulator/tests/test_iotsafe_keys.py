"""Generate Key Pair, Read Public Key, Put Public Key, Compute DH; sessions and persistence."""

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from safebench_simulator.card import Card
from safebench_simulator.iotsafe import IoTSafeApplet
from safebench_simulator.uicc import Uicc

TEMPLATE = bytes.fromhex("344549438641")  # 34 LL 49 LL 86 LL, then the point 04 X Y
# A valid P-256 point written by Thales' unit tests into container 05 (docs/iotsafe.md §4.6).
THALES_PEER_VALUE = bytes.fromhex(
    "4943864104"
    "9E5B7F778B7997617C8993B6406608EFE2D3F2D6751D6B3F5F5320FFFD6A7DC9"
    "A8F6C5C1474F64D668364AE2ED8DC4C1C6C4767423B013937B4499F52C4F89A0"
)


class Changes:
    def __init__(self):
        self.count = 0

    def __call__(self):
        self.count += 1


@pytest.fixture
def changes():
    return Changes()


@pytest.fixture
def applet(card, changes):
    """The applet, counting its card's changes."""
    return IoTSafeApplet(card, on_change=changes)


def point_of(key):
    return key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def test_generate_key_pair_refreshes_a_persistent_pair(applet, card, changes, run):
    before = card.public_key(b"\x01")
    response, sw = run(applet, 0x81, 0xB9, 0x00, 0x00, "840101")
    assert sw == 0x9000 and changes.count == 1
    assert response[:6] == bytes.fromhex("840101 850101") and response[6:12] == TEMPLATE
    assert response[12:] == card.public_key(b"\x01") != before
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), response[12:])
    by_label, sw = run(applet, 0x81, 0xB9, 0x00, 0x00, "740A" + b"client-key".hex())
    assert sw == 0x9000 and by_label[:6] == bytes.fromhex("840101 850101") and changes.count == 2


def test_generate_volatile_pair_is_not_persisted(applet, card, changes, tmp_path, run):
    response, sw = run(applet, 0x81, 0xB9, 0x00, 0x00, "840104")
    assert sw == 0x9000 and changes.count == 0  # RAM only: nothing to save
    assert card.find("private_key", id=b"\x04").filled
    card.save(tmp_path / "card.json")
    assert not Card.load(tmp_path / "card.json").find("private_key", id=b"\x04").filled
    uicc = Uicc(card, {card.aid: applet})
    uicc.reset()  # a card reset empties volatile keys, keeps persistent ones
    assert not card.find("private_key", id=b"\x04").filled and card.public_key(b"\x04") == b""
    assert card.find("private_key", id=b"\x01").filled


@pytest.mark.parametrize(
    "data, sw",
    [
        ("840109", 0x6A82),
        ("850101", 0x6A80),  # a public key reference
        ("", 0x6700),
        ("840101 7401AA", 0x6A80),  # both ID and label
    ],
)
def test_generate_key_pair_errors(applet, data, sw, run):
    assert run(applet, 0x81, 0xB9, 0x00, 0x00, data) == (b"", sw)
    assert run(applet, 0x81, 0xB9, 0x01, 0x00, "840101") == (b"", 0x6A86)


def test_generate_key_pair_needs_the_key_generation_function(card, changes, run):
    card._containers["public_key"][b"\x01"].attributes["functions"] = b"\x01"  # signature only
    applet = IoTSafeApplet(card, on_change=changes)
    assert run(applet, 0x81, 0xB9, 0x00, 0x00, "840101") == (b"", 0x6985)
    assert changes.count == 0


def test_key_in_a_session_cannot_be_regenerated(applet, run):
    assert run(applet, 0x81, 0x2A, 0x00, 0x01, "840101 A10103 91020001 920104")[1] == 0x9000
    assert run(applet, 0x81, 0xB9, 0x00, 0x00, "840101") == (b"", 0x6985)
    assert run(applet, 0x81, 0x2A, 0x01, 0x01)[1] == 0x9000
    assert run(applet, 0x81, 0xB9, 0x00, 0x00, "840101")[1] == 0x9000


def test_read_public_key(applet, card, run):
    response, sw = run(applet, 0x81, 0xCD, 0x00, 0x00, "850101")
    assert sw == 0x9000 and response == TEMPLATE + card.public_key(b"\x01") and len(response) == 71
    assert run(applet, 0x81, 0xCD, 0x00, 0x00, "850105") == (b"", 0x6985)  # empty peer container
    assert run(applet, 0x81, 0xCD, 0x00, 0x00, "850109") == (b"", 0x6A82)
    assert run(applet, 0x81, 0xCD, 0x00, 0x00, "840101") == (b"", 0x6A80)
    assert run(applet, 0x81, 0xCD, 0x00, 0x01, "850101") == (b"", 0x6A86)


def test_read_public_key_respects_read_access(run):
    applet = IoTSafeApplet(Card.new("thales-mvp"))  # the MVP pair's public key has access 02 (update only)
    assert run(applet, 0x80, 0xCD, 0x00, 0x00, "85020002") == (b"", 0x6982)


def test_put_public_key_persistent(applet, card, changes, run):
    peer = ec.generate_private_key(ec.SECP256R1())
    assert run(applet, 0x81, 0x24, 0x00, 0x02, "850105") == (b"", 0x9000)
    value = TEMPLATE + point_of(peer)
    assert run(applet, 0x81, 0xD8, 0x80, 0x02, value.hex()) == (b"", 0x9000)
    assert card.public_key(b"\x05") == point_of(peer) and changes.count == 1
    assert run(applet, 0x81, 0x24, 0x01, 0x02) == (b"", 0x9000)
    assert run(applet, 0x81, 0xD8, 0x80, 0x02, value.hex()) == (b"", 0x6A86)  # closed


def test_put_public_key_split_blocks(applet, card, run):
    """One 34 TLV per block; the value parts join up (Thales PKCS#11 splitting)."""
    assert run(applet, 0x01, 0x24, 0x00, 0x00, "750470656572") == (b"", 0x9000)  # by label "peer"
    parts = [THALES_PEER_VALUE[:20], THALES_PEER_VALUE[20:50], THALES_PEER_VALUE[50:]]
    for part in parts[:-1]:
        assert run(applet, 0x01, 0xD8, 0x00, 0x00, (bytes((0x34, len(part))) + part).hex()) == (b"", 0x9000)
    assert card.public_key(b"\x05") == b""  # nothing stored before the last block
    assert run(applet, 0x01, 0xD8, 0x80, 0x00, (bytes((0x34, len(parts[-1]))) + parts[-1]).hex()) == (
        b"",
        0x9000,
    )
    assert card.public_key(b"\x05") == THALES_PEER_VALUE[4:]


@pytest.mark.parametrize(
    "value",
    [
        TEMPLATE + b"\x04" + bytes(64),  # (0, 0) is not on P-256
        TEMPLATE
        + b"\x04"
        + bytes.fromhex("9E5B7F778B7997617C8993B6406608EFE2D3F2D6751D6B3F5F5320FFFD6A7DC9")
        + bytes(32),
        bytes.fromhex("3425 4923 8621 02") + THALES_PEER_VALUE[5:37],  # a compressed point
        TEMPLATE[:-1] + b"\x40" + THALES_PEER_VALUE[5:],  # 86 40 X Y: no 04, one byte short of the lengths
        bytes.fromhex("9E02 0000"),  # not tag 34
        bytes.fromhex("3403 860100"),  # no 49 template
    ],
)
def test_put_public_key_rejects_bad_points(applet, card, changes, value, run):
    assert run(applet, 0x81, 0x24, 0x00, 0x02, "850105")[1] == 0x9000
    assert run(applet, 0x81, 0xD8, 0x80, 0x02, value.hex()) == (b"", 0x6A80)
    assert card.public_key(b"\x05") == b"" and changes.count == 0


def test_put_public_key_access_and_sessions(applet, run):
    assert run(applet, 0x81, 0x24, 0x00, 0x02, "850101") == (b"", 0x6982)  # client public key: read only
    assert run(applet, 0x81, 0x24, 0x00, 0x02, "850109") == (b"", 0x6A82)
    assert run(applet, 0x81, 0x24, 0x00, 0x02, "850105")[1] == 0x9000
    assert run(applet, 0x81, 0x24, 0x00, 0x02, "850105") == (b"", 0x6A86)  # session already open
    assert run(applet, 0x81, 0x24, 0x00, 0x03, "850105") == (b"", 0x6A86)  # no free session (B7 = 1)


def test_compute_dh_tls_flow(applet, card, run):
    """Generate the ephemeral pair, read it, put the peer's key, agree: both sides get the same X."""
    assert run(applet, 0x81, 0xB9, 0x00, 0x00, "840104")[1] == 0x9000
    own, sw = run(applet, 0x81, 0xCD, 0x00, 0x00, "850104")
    assert sw == 0x9000
    peer = ec.generate_private_key(ec.SECP256R1())
    assert run(applet, 0x81, 0x24, 0x00, 0x02, "850105")[1] == 0x9000
    assert run(applet, 0x81, 0xD8, 0x80, 0x02, (TEMPLATE + point_of(peer)).hex())[1] == 0x9000
    assert run(applet, 0x81, 0x24, 0x01, 0x02)[1] == 0x9000
    shared, sw = run(applet, 0x81, 0x46, 0x00, 0x00, "840104 850105")
    assert sw == 0x9000 and len(shared) == 32
    card_public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), own[6:])
    assert shared == peer.exchange(ec.ECDH(), card_public)


def test_compute_dh_errors(applet, run):
    assert run(applet, 0x81, 0x46, 0x00, 0x00, "840104 850105") == (
        b"",
        0x6985,
    )  # ephemeral key not generated
    assert run(applet, 0x81, 0xB9, 0x00, 0x00, "840104")[1] == 0x9000
    assert run(applet, 0x81, 0x46, 0x00, 0x00, "840104 850105") == (b"", 0x6985)  # empty peer container
    assert run(applet, 0x81, 0x46, 0x00, 0x00, "840101 850104") == (
        b"",
        0x6985,
    )  # signing key: no key agreement
    assert run(applet, 0x81, 0x46, 0x00, 0x00, "840109 850104") == (b"", 0x6A82)
    assert run(applet, 0x81, 0x46, 0x00, 0x00, "840104 850109") == (b"", 0x6A82)
    assert run(applet, 0x81, 0x46, 0x00, 0x00, "840104") == (b"", 0x6A80)  # no peer reference
    assert run(applet, 0x81, 0x46, 0x00, 0x00, "") == (b"", 0x6700)
    assert run(applet, 0x81, 0x46, 0x00, 0x00, "840104 850104")[1] == 0x9000  # own public key as peer: valid


def test_sessions_up_to_the_profile_maximum(run):
    card = Card.new("zariot")  # B7 = 2
    applet = IoTSafeApplet(card)
    sign = "8403303036 A10103 91020001 920104"
    assert run(applet, 0x81, 0xCB, 0x00, 0x00)[0][-3:] == b"\xb7\x01\x02"
    assert run(applet, 0x81, 0x2A, 0x00, 0x01, sign)[1] == 0x9000
    assert run(applet, 0x81, 0x2A, 0x00, 0x02, sign) == (b"", 0x6985)  # the key is already in a session
    assert run(applet, 0x81, 0x2C, 0x00, 0x02, "8503303037 A10103 91020001 920104")[1] == 0x9000
    assert run(applet, 0x81, 0x24, 0x00, 0x03, "8503303038") == (b"", 0x6A86)  # both sessions taken
    assert run(applet, 0x82, 0x24, 0x00, 0x01, "8503303038") == (b"", 0x6A86)
    assert run(applet, 0x81, 0x2A, 0x01, 0x01)[1] == 0x9000
    assert run(applet, 0x81, 0x24, 0x00, 0x03, "8503303038")[1] == 0x9000


def test_channel_close_and_reselect_abort_sessions(card):
    applet = IoTSafeApplet(card)
    uicc = Uicc(card, {card.aid: applet})
    select = "A4040007" + card.aid.hex()

    def tx(hex_apdu):
        return uicc.transmit(bytes.fromhex(hex_apdu)).hex().upper()

    assert tx("0070000001") == "019000" and tx("01" + select) == "9000"
    assert tx("812A00010D840101A1010391020001920104") == "9000"
    assert tx("812A00010D840101A1010391020001920104") == "6A86"
    assert tx("01" + select) == "9000"  # re-SELECT aborts the session
    assert tx("812A00010D840101A1010391020001920104") == "9000"
    assert tx("0070800100") == "9000" and tx("0070000001") == "019000" and tx("01" + select) == "9000"
    assert tx("812A00010D840101A1010391020001920104") == "9000"  # the close aborted it too
