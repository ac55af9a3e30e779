"""Random APDUs at every profile's UICC: no exception, a plausible status word, no private material out.

Hypothesis mixes raw bytes with APDUs built from the real instructions, tags and object IDs of the
profile, so that sequences reach deep states (sessions open, keys regenerated, lists half read).
"""

import random

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safebench_simulator import profile as profiles
from safebench_simulator.card import Card
from safebench_simulator.iotsafe import IoTSafeApplet
from safebench_simulator.uicc import Uicc

INS = [
    0xCB,
    0xB0,
    0x84,
    0x2A,
    0x2B,
    0x2C,
    0x2D,
    0xB9,
    0xCD,
    0x24,
    0xD8,
    0x46,
    0x48,
    0x4A,
    0x70,
    0xA4,
    0xC0,
    0x12,
]
CLA = [0x00, 0x01, 0x02, 0x03, 0x80, 0x81, 0x82, 0x83, 0xA0, 0x40, 0x10, 0xC1]
P1 = [0x00, 0x01, 0x02, 0x03, 0x04, 0x80, 0xC1, 0xC2, 0xC3, 0xC4]
P2 = [0x00, 0x01, 0x02, 0x0C]
TAGS = [
    0x83,
    0x73,
    0x84,
    0x74,
    0x85,
    0x75,
    0x86,
    0x76,
    0xA1,
    0x91,
    0x92,
    0x9A,
    0x9B,
    0x9C,
    0x9D,
    0x9E,
    0x33,
    0x34,
    0xD1,
    0xD2,
    0xD3,
    0xD4,
    0xD5,
    0x49,
]
PLAUSIBLE = {
    0x9000,
    0x6300,
    0x6700,
    0x6881,
    0x6982,
    0x6985,
    0x6A80,
    0x6A81,
    0x6A82,
    0x6A86,
    0x6B00,
    0x6D00,
    0x6D01,
    0x6E00,
}
PLAUSIBLE_SW1 = {0x61, 0x6C}


def tlv(tag, value):
    return bytes((tag, len(value))) + value


def values_for(card):
    """TLV values worth trying: every ID and label of the card, modes, hashes, sizes, a valid point."""
    ids = [
        info.id for kind in ("private_key", "public_key", "file", "secret_key") for info in card.objects(kind)
    ]
    labels = [
        info.label
        for kind in ("private_key", "public_key", "file", "secret_key")
        for info in card.objects(kind)
    ]
    point = bytes.fromhex("4943864104") + card.public_key(card.role("signing_key"))[1:]
    return (
        ids
        + labels
        + [
            b"\x01",
            b"\x02",
            b"\x03",
            b"\x04",
            b"\x00\x01",
            b"\x00\x02",
            b"\x10",
            b"\xff",
            bytes(32),
            bytes(48),
            bytes(64),
            point,
            b"\x00\x40" + bytes(64),
        ]
    )


def recipes(card):
    """Well-formed commands (INS, P1, P2, data, Le) for this card's objects: the paths to deep states."""
    refs = {
        kind: [tlv(tag, info.id) for info in card.objects(kind)]
        for kind, tag in (("private_key", 0x84), ("public_key", 0x85), ("file", 0x83), ("secret_key", 0x86))
    }
    point = card.public_key(card.role("signing_key"))
    signatures = [_signature(card, b"m"), _signature(card, bytes(32), prehashed=True)]
    params = [bytes.fromhex(f"A101{mode:02X} 9102{h:04X} 920104") for mode in (1, 2, 3) for h in (1, 2, 4)]
    out = [
        (0xCB, 0x00, 0x00, b"", 0x44),
        (0xCB, 0x01, 0x00, b"", None),
        (0xCB, 0x01, 0x01, b"", 0x20),
        (0xCB, 0x01, 0x00, b"", 0x20),
        (0x84, 0x00, 0x00, b"", 0x10),
        (0x70, 0x00, 0x00, b"", None),
    ]
    for kind, p1 in (("private_key", 0xC1), ("public_key", 0xC2), ("file", 0xC3), ("secret_key", 0xC4)):
        out += [(0xCB, p1, 0x00, r, 0x00) for r in refs[kind]]
    out += [
        (0xB0, off >> 8, off & 0xFF, r, le)
        for r in refs["file"]
        for off in (0, 60, 300)
        for le in (None, 0x40)
    ]
    for session in (0, 1):
        out += [(0x2A, 0x00, session, r + p, None) for r in refs["private_key"] for p in params]
        out += [(0x2C, 0x00, session, r + p, None) for r in refs["public_key"] for p in params]
        out += [(0x24, 0x00, session, r, None) for r in refs["public_key"]]
        out += [(ins, 0x01, session, b"", None) for ins in (0x2A, 0x2C, 0x24)]
        for p1 in (0x00, 0x80):
            out += [(0x2B, p1, session, tlv(0x9E, bytes(n)), 0x00) for n in (32, 48, 64)]
            out += [
                (0x2B, p1, session, tlv(0x9B, b"message"), None),
                (0x2B, p1, session, tlv(0x9A, b"x") + tlv(0x9C, bytes(32)) + tlv(0x9D, bytes(4)), None),
                (0x2D, p1, session, tlv(0x9E, bytes(32)) + b"\x33\x40" + bytes(64), None),
                (0x2D, p1, session, tlv(0x9B, b"m") + b"\x33\x00\x40" + bytes(64), None),
                (0xD8, p1, session, tlv(0x34, bytes.fromhex("49438641") + point), None),
                (0x2D, p1, session, tlv(0x9B, b"m") + b"\x33\x40" + signatures[0], None),
                (0x2D, p1, session, tlv(0x9E, bytes(32)) + b"\x33\x00\x40" + signatures[1], None),
                (0xD8, p1, session, tlv(0x34, bytes.fromhex("4943")), None),
            ]
    out += [(0xB9, 0x00, 0x00, r, 0x00) for r in refs["private_key"]]
    out += [(0xCD, 0x00, 0x00, r, None) for r in refs["public_key"]]
    out += [(0x46, 0x00, 0x00, a + b, None) for a in refs["private_key"] for b in refs["public_key"]]
    for r in refs["secret_key"]:
        out += [
            (0x48, 0x01, 0x00, r + tlv(0xD2, b"label") + tlv(0xD3, b"\x20"), None),
            (0x48, 0x02, 0x00, r + tlv(0xD4, bytes(32)) + tlv(0xD2, b"l") + tlv(0xD3, b"\x10"), None),
            (0x4A, 0x00, 0x00, r + tlv(0xD5, b"salt") + bytes.fromhex("91020001"), None),
        ]
    out += [
        (0x48, 0x00, 0x00, tlv(0xD1, b"k") + tlv(0xD2, b"l") + tlv(0xD3, b"\xff"), None),
        (0x4A, 0x00, 0x00, tlv(0xD1, b"k") + tlv(0xD5, b"s") + bytes.fromhex("91020004"), None),
    ]
    return out


def _signature(card, data, prehashed=False):
    """r||s by the card's signing key over SHA-256 of ``data`` (or over ``data`` as the digest)."""
    algorithm = ec.ECDSA(Prehashed(hashes.SHA256()) if prehashed else hashes.SHA256())
    r, s = decode_dss_signature(card._private_key(card.role("signing_key")).sign(data, algorithm))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def build(cla, ins, p1, p2, data, le):
    apdu = bytes((cla, ins, p1, p2))
    if data:
        apdu += bytes((len(data),)) + data
    if le is not None:
        apdu += bytes((le,))
    return apdu


def mutate(apdu, flip):
    """Change one byte, or none."""
    if flip is None or not apdu:
        return apdu
    i = flip[0] % len(apdu)
    return apdu[:i] + bytes((flip[1],)) + apdu[i + 1 :]


def apdus(card):
    field = st.tuples(st.sampled_from(TAGS), st.sampled_from(values_for(card)) | st.binary(max_size=70)).map(
        lambda tv: tlv(tv[0], tv[1][:255])
    )
    body = st.lists(field, max_size=5).map(b"".join).filter(lambda d: len(d) <= 255)
    structured = st.builds(
        build,
        st.sampled_from(CLA) | st.integers(0, 255),
        st.sampled_from(INS) | st.integers(0, 255),
        st.sampled_from(P1) | st.integers(0, 255),
        st.sampled_from(P2) | st.integers(0, 255),
        body,
        st.none() | st.integers(0, 255),
    )
    groups = {}
    for r in recipes(card):  # drawn instruction first, so that every instruction gets its share
        groups.setdefault(r[0], []).append(r)
    one_recipe = st.sampled_from(sorted(groups.values())).flatmap(st.sampled_from)
    flip = st.sampled_from([None, None, None]) | st.tuples(st.integers(0, 300), st.integers(0, 255))
    recipe = st.builds(
        lambda cla, r, f: mutate(build(cla, *r), f),
        st.sampled_from([0x81, 0x80, 0x01, 0x00]),
        one_recipe,
        flip,
    )
    get_response = st.builds(
        lambda cla, le: bytes((cla, 0xC0, 0x00, 0x00, le)),
        st.sampled_from([0x00, 0x01, 0x81]),
        st.integers(0, 255),
    )
    setup = st.sampled_from(
        [
            bytes.fromhex("0070000001"),
            bytes.fromhex("00A40400") + bytes((len(card.aid),)) + card.aid,
            bytes.fromhex("01A40400") + bytes((len(card.aid),)) + card.aid,
            bytes.fromhex("0070800100"),
        ]
    )
    return st.lists(
        st.one_of(recipe, recipe, recipe, recipe, get_response, structured, setup, st.binary(max_size=270)),
        min_size=5,
        max_size=40,
    )


class CheckedUicc:
    """A fresh card of one profile behind its UICC, selected on channels 0 and 1, saving on every change;
    every answer is checked (plausible status word, no private material out)."""

    def __init__(self, name, path, private_material):
        self.card = Card.new(name)
        self.path = path
        self.private_material = private_material  # what the card holds that must never come out
        self.uicc = Uicc(
            self.card, {self.card.aid: IoTSafeApplet(self.card, on_change=self.save)}, realtime=False
        )
        self.known = set(self.private_material(self.card))
        self.successes = set()  # instructions that answered data or 9000
        select = bytes.fromhex("A40400") + bytes((len(self.card.aid),)) + self.card.aid
        assert self.uicc.transmit(b"\x00" + select) == b"\x90\x00"
        assert self.uicc.transmit(bytes.fromhex("0070000001")) == bytes.fromhex("019000")
        assert self.uicc.transmit(b"\x01" + select) == b"\x90\x00"

    def save(self):
        self.card.save(self.path)

    def send(self, apdu):
        response = self.uicc.transmit(apdu)
        assert len(response) >= 2
        status = int.from_bytes(response[-2:], "big")
        assert status in PLAUSIBLE or response[-2] in PLAUSIBLE_SW1, (apdu.hex(), response.hex())
        assert status in (0x9000, 0x6300) or response[-2] == 0x61 or len(response) == 2
        self.known |= set(self.private_material(self.card))
        assert not any(secret in response for secret in self.known), apdu.hex()
        if len(apdu) >= 4 and (status == 0x9000 or response[-2] == 0x61):
            self.successes.add(apdu[1])

    def check_image(self):
        """The image saved now loads back with the same persistent keys and profile."""
        self.save()
        loaded = Card.load(self.path)
        for info in self.card.objects("public_key"):
            if not info.volatile:
                assert loaded.public_key(info.id) == self.card.public_key(info.id)
        assert loaded.profile == self.card.profile


@pytest.mark.parametrize("name", profiles.names())
def test_random_apdus(name, tmp_path, private_material):
    template = Card.new(name)

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(sequence=apdus(template))
    def send_all(sequence):
        target = CheckedUicc(name, tmp_path / "card.json", private_material)
        for apdu in sequence:
            target.send(apdu)
        target.check_image()

    send_all()


def verify_flow(target):
    """A well-formed verification and signature with the current key, amid whatever the walk left open."""
    card = target.card
    public_id = card.pair_of(card.role("signing_key"))
    for ins in (0x2A, 0x2C, 0x24):
        target.send(bytes((0x80, ins, 0x01, 0x07)))
    init = tlv(0x85, public_id) + bytes.fromhex("A10101 91020001 920104")
    target.send(build(0x80, 0x2C, 0x00, 0x07, init, None))
    target.send(build(0x80, 0x2D, 0x80, 0x07, tlv(0x9B, b"m") + b"\x33\x40" + _signature(card, b"m"), None))
    target.send(bytes((0x80, 0x2C, 0x01, 0x07)))
    sign_init = tlv(0x84, card.role("signing_key")) + bytes.fromhex("A10103 91020001 920104")
    target.send(build(0x80, 0x2A, 0x00, 0x07, sign_init, None))
    target.send(build(0x80, 0x2B, 0x80, 0x07, tlv(0x9E, bytes(32)), 0x00))
    target.send(bytes((0x80, 0x2A, 0x01, 0x07)))


@pytest.mark.parametrize("name", profiles.names())
def test_seeded_walk_reaches_every_instruction(name, tmp_path, private_material):
    """Long seeded walks over well-formed (and now and then corrupted) commands: every instruction succeeds
    somewhere, so the invariants above were checked in deep states too."""
    rng = random.Random(f"safebench-{name}")
    target = CheckedUicc(name, tmp_path / "card.json", private_material)
    target.card.set_file(target.card.role("client_cert"), bytes(range(256)) * 2)  # a personalised card
    groups = {}
    for r in recipes(target.card):
        groups.setdefault(r[0], []).append(r)
    groups = sorted(groups.values())
    for step in range(2500):
        if step % 300 == 299:
            target.uicc.reset()
            for apdu in (
                "0070000001",
                "00A40400" + f"{len(target.card.aid):02X}" + target.card.aid.hex(),
                "01A40400" + f"{len(target.card.aid):02X}" + target.card.aid.hex(),
            ):
                target.send(bytes.fromhex(apdu))
        if step % 250 == 0:
            verify_flow(target)
        apdu = build(rng.choice((0x80, 0x00, 0x81, 0x01)), *rng.choice(rng.choice(groups)))
        if rng.random() < 0.15:
            apdu = mutate(apdu, (rng.randrange(300), rng.randrange(256)))
        target.send(apdu)
        if target.uicc._pending and rng.random() < 0.7:  # fetch what 61xx announced, as hosts do
            target.send(bytes((apdu[0] & 0x03, 0xC0, 0x00, 0x00, 0x00)))
    wanted = {0xCB, 0xB0, 0x84, 0x2A, 0x2B, 0x2C, 0x2D, 0xB9, 0xCD, 0x24, 0xD8, 0x46, 0x48, 0x4A, 0xC0}
    if not any(info.attribute("access") & 0x01 for info in target.card.objects("public_key")):
        wanted.discard(0xCD)  # thales-mvp: no public key may be read (access 02), so CD is always 6982
    assert wanted <= target.successes, sorted(hex(i) for i in wanted - target.successes)
    target.check_image()
