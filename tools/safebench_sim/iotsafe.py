"""The IoT SAFE applet (GSMA IoT.05) of the simulated SIM.

It turns command APDUs that the UICC routed to it into IoT SAFE operations on a
``Card``. Byte formats follow what real cards were seen to do (see
docs iotsafe-interface.md sections 2 and 3): one-byte TLV lengths, tag 91 with a
two-byte value, unwrapped object information records, raw r||s signatures
returned as ``33 40 <64 bytes>``.

Implemented: GET DATA (application, key and file information), READ FILE,
GET RANDOM, COMPUTE SIGNATURE Init/Update (ECDSA P-256, modes 01 full text and
03 pad-and-sign, SHA-256/384/512). One crypto session at a time, as on the
Thales MVP card. No command ever returns private key material.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from . import sw
from .card import ATTRIBUTE_TAGS, Card, ObjectInfo

INS_SIGN_INIT = 0x2A
INS_SIGN_UPDATE = 0x2B
INS_GET_RANDOM = 0x84
INS_READ_FILE = 0xB0
INS_GET_DATA = 0xCB

CLA_OTHER_BITS = 0x7C  # anything but the proprietary bit 80 and the channel bits 03
MAX_SESSIONS = 1
READ_FILE_DEFAULT_CHUNK = 255  # bytes returned when the host sends no Le (Thales PKCS#11 steps by 255)

MODE_FULL_TEXT = 0x01  # the applet hashes the message (tag 9B)
MODE_PAD_AND_SIGN = 0x03  # the host sends the final hash (tag 9E)
ALG_ECDSA = 0x04
FUNCTION_SIGNATURE = 0x01
ACCESS_READ = 0x01

HASHES = {0x0001: hashes.SHA256, 0x0002: hashes.SHA384, 0x0004: hashes.SHA512}

# Object reference tags per container kind: (identifier, label).
REF_TAGS = {
    "file": (0x83, 0x73),
    "private_key": (0x84, 0x74),
    "public_key": (0x85, 0x75),
    "secret_key": (0x86, 0x76),
}
INFO_KINDS = {0xC1: "private_key", 0xC2: "public_key", 0xC3: "file", 0xC4: "secret_key"}

# Attributes of each kind's information record, in the order the Thales MVP card emits them
# (after label, id, access and state).
_KEY_ATTRIBUTES = ("key_type", "key_usage", "functions", "signature", "hash", "key_agreement")
_RECORD_ATTRIBUTES = {
    "private_key": _KEY_ATTRIBUTES,
    "public_key": _KEY_ATTRIBUTES,
    "file": ("file_usage",),
    "secret_key": ("key_type", "functions", "key_derivation"),
}

TAG_ACCESS, TAG_STATE, TAG_FILE_SIZE = 0x60, 0x4A, 0x20
TAG_MODE, TAG_HASH, TAG_SIG_ALG = 0xA1, 0x91, 0x92
TAG_FULL_TEXT, TAG_FINAL_HASH, TAG_SIGNATURE = 0x9B, 0x9E, 0x33

PROPRIETARY_ID = b"safebench-sim IoT SAFE applet   "  # tag 11 is 32 bytes


class _Status(Exception):
    """Abort the command with this status word."""

    def __init__(self, sw_: int):
        super().__init__(f"{sw_:04X}")
        self.sw = sw_


@dataclass
class _SignSession:
    key_id: bytes
    mode: int
    hash_alg: type[hashes.HashAlgorithm]
    hasher: hashes.Hash | None = None  # mode 01: running hash of the message so far

    def restart(self) -> None:
        self.hasher = hashes.Hash(self.hash_alg()) if self.mode == MODE_FULL_TEXT else None


def tlv(tag: int, value: bytes) -> bytes:
    """One-byte tag, one-byte length, value."""
    if len(value) > 0xFF:
        raise ValueError(f"TLV {tag:02X} value too long ({len(value)} bytes)")
    return bytes((tag, len(value))) + value


def parse_tlvs(data: bytes, allowed: set[int]) -> dict[int, bytes]:
    """Flat one-byte-length TLVs; 6A80 on truncation, unknown or repeated tags."""
    fields: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        if i + 2 > len(data) or i + 2 + data[i + 1] > len(data):
            raise _Status(sw.INCORRECT_DATA)
        tag, length = data[i], data[i + 1]
        if tag not in allowed or tag in fields:
            raise _Status(sw.INCORRECT_DATA)
        fields[tag] = data[i + 2:i + 2 + length]
        i += 2 + length
    return fields


def object_record(info: ObjectInfo) -> bytes:
    """The information record of one object, unwrapped (no C1..C4 header)."""
    id_tag, label_tag = REF_TAGS[info.kind]
    record = tlv(label_tag, info.label) if info.label else b""
    record += tlv(id_tag, info.id)
    record += tlv(TAG_ACCESS, info.attributes.get("access", b"\x00"))
    record += tlv(TAG_STATE, b"\x01" if info.filled else b"\x00")
    for name in _RECORD_ATTRIBUTES[info.kind]:
        if name in info.attributes:
            record += tlv(ATTRIBUTE_TAGS[name], info.attributes[name])
    if info.kind == "file":
        record += tlv(TAG_FILE_SIZE, info.size.to_bytes(2, "big"))
    return record


class IoTSafeApplet:
    """One IoT SAFE applet instance, selectable on several logical channels."""

    def __init__(self, card: Card, on_change: Callable[[], None] | None = None):
        self.card = card
        self._on_change = on_change or (lambda: None)  # no implemented command changes the image yet
        self._sessions: dict[tuple[int, int], _SignSession] = {}  # (channel, session number) -> session
        self._handlers = {
            INS_GET_DATA: self._get_data,
            INS_READ_FILE: self._read_file,
            INS_GET_RANDOM: self._get_random,
            INS_SIGN_INIT: self._sign_init,
            INS_SIGN_UPDATE: self._sign_update,
        }

    def process(self, cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None) -> tuple[bytes, int]:
        """Run one command. ``le`` is None when absent, else 1..256 (00 means 256)."""
        if cla & CLA_OTHER_BITS:  # only channel bits and the proprietary bit (0n and 8n) are accepted
            return b"", sw.CLA_NOT_SUPPORTED
        handler = self._handlers.get(ins)
        if handler is None:
            return b"", sw.INS_NOT_SUPPORTED
        try:
            return handler(cla & 0x03, p1, p2, data, le), sw.OK
        except _Status as status:
            return b"", status.sw

    def deselect(self, channel: int) -> None:
        """The applet lost ``channel`` (re-SELECT, channel closed, card reset): abort its sessions."""
        for key in [k for k in self._sessions if k[0] == channel]:
            del self._sessions[key]

    # -- object lookup ------------------------------------------------------------

    def _find(self, kind: str, fields: dict[int, bytes]) -> ObjectInfo:
        """Object named by exactly one of its identifier or label TLV."""
        id_tag, label_tag = REF_TAGS[kind]
        if (id_tag in fields) == (label_tag in fields):
            raise _Status(sw.INCORRECT_DATA)
        info = self.card.find(kind, id=fields.get(id_tag), label=fields.get(label_tag))
        if info is None:
            raise _Status(sw.NOT_FOUND)
        return info

    # -- commands -----------------------------------------------------------------

    def _get_data(self, channel: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        if p2 != 0x00:
            raise _Status(sw.INCORRECT_P1P2)
        if p1 == 0x00:
            if data:
                raise _Status(sw.WRONG_LENGTH)
            return self._application_info()
        kind = INFO_KINDS.get(p1)
        if kind is None:
            raise _Status(sw.INCORRECT_P1P2)
        return object_record(self._find(kind, parse_tlvs(data, set(REF_TAGS[kind]))))

    def _application_info(self) -> bytes:
        """Capabilities, in the tag order of the Thales MVP card; values describe this simulator."""
        return b"".join((
            tlv(0x10, b"\x10"),  # SIM Alliance version
            tlv(0x11, PROPRIETARY_ID),
            tlv(0xB1, bytes((len(self.card.objects("file")),))),
            tlv(0xB2, bytes((len(self.card.objects("private_key")),))),
            tlv(0xB3, bytes((len(self.card.objects("public_key")),))),
            tlv(0xB4, bytes((len(self.card.objects("secret_key")),))),
            tlv(0x61, bytes((FUNCTION_SIGNATURE,))),
            tlv(TAG_HASH, sum(HASHES).to_bytes(2, "big")),
            tlv(TAG_SIG_ALG, bytes((ALG_ECDSA,))),
            tlv(0x6F, b"\x00"),  # no key agreement yet
            tlv(0x94, b"\x00"),  # no key derivation yet
            tlv(0xB7, bytes((MAX_SESSIONS,))),
        ))

    def _read_file(self, channel: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        offset = p1 << 8 | p2
        info = self._find("file", parse_tlvs(data, set(REF_TAGS["file"])))
        if not info.attributes.get("access", b"\x00")[0] & ACCESS_READ:
            raise _Status(sw.SECURITY_STATUS_NOT_SATISFIED)
        content = self.card.file(info.id)
        if offset >= len(content):
            raise _Status(sw.WRONG_OFFSET)
        return content[offset:offset + (le or READ_FILE_DEFAULT_CHUNK)]

    def _get_random(self, channel: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        if p1 or p2:
            raise _Status(sw.INCORRECT_P1P2)
        if data or le is None:
            raise _Status(sw.WRONG_LENGTH)
        return os.urandom(le)

    def _sign_init(self, channel: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        if p1 == 0x01:  # close; closing a session that is not open is harmless (hosts close blindly)
            self._sessions.pop((channel, p2), None)
            return b""
        if p1 != 0x00:
            raise _Status(sw.INCORRECT_P1P2)
        if (channel, p2) in self._sessions or len(self._sessions) >= MAX_SESSIONS:
            raise _Status(sw.INCORRECT_P1P2)
        fields = parse_tlvs(data, {*REF_TAGS["private_key"], TAG_MODE, TAG_HASH, TAG_SIG_ALG})
        key = self._find("private_key", fields)
        mode, hash_id, alg = _sign_parameters(fields)
        if mode not in (MODE_FULL_TEXT, MODE_PAD_AND_SIGN):
            raise _Status(sw.INCORRECT_DATA)
        if hash_id not in HASHES or not hash_id & int.from_bytes(key.attributes.get("hash", b""), "big"):
            raise _Status(sw.INCORRECT_DATA)
        if alg != ALG_ECDSA or not alg & key.attributes.get("signature", b"\x00")[0]:
            raise _Status(sw.INCORRECT_DATA)
        if not key.filled or not key.attributes.get("functions", b"\x00")[0] & FUNCTION_SIGNATURE:
            raise _Status(sw.CONDITIONS_NOT_SATISFIED)
        session = _SignSession(key.id, mode, HASHES[hash_id])
        session.restart()
        self._sessions[(channel, p2)] = session
        return b""

    def _sign_update(self, channel: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        session = self._sessions.get((channel, p2))
        if p1 not in (0x00, 0x80) or session is None:
            raise _Status(sw.INCORRECT_P1P2)
        last = p1 == 0x80
        if session.mode == MODE_PAD_AND_SIGN:
            if not last:
                raise _Status(sw.INCORRECT_P1P2)
            digest = parse_tlvs(data, {TAG_FINAL_HASH}).get(TAG_FINAL_HASH)
            if digest is None or len(digest) != session.hash_alg.digest_size:
                raise _Status(sw.INCORRECT_DATA)
        else:
            block = parse_tlvs(data, {TAG_FULL_TEXT}).get(TAG_FULL_TEXT)
            if block is None:
                raise _Status(sw.INCORRECT_DATA)
            session.hasher.update(block)
            if not last:
                return b""
            digest = session.hasher.finalize()
            session.restart()  # the session stays open for another message until closed
        return tlv(TAG_SIGNATURE, self._sign(session, digest))

    def _sign(self, session: _SignSession, digest: bytes) -> bytes:
        """ECDSA over a digest, as raw r||s with each half left-padded to 32 bytes."""
        key = self.card._private_key(session.key_id)
        if key is None:
            raise _Status(sw.CONDITIONS_NOT_SATISFIED)
        der = key.sign(digest, ec.ECDSA(Prehashed(session.hash_alg())))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _sign_parameters(fields: dict[int, bytes]) -> tuple[int, int, int]:
    """(mode, hash id, signature algorithm) from the A1, 91 and 92 TLVs of an Init."""
    mode, hash_id, alg = fields.get(TAG_MODE), fields.get(TAG_HASH), fields.get(TAG_SIG_ALG)
    if mode is None or hash_id is None or alg is None or len(mode) != 1 or len(hash_id) != 2 or len(alg) != 1:
        raise _Status(sw.INCORRECT_DATA)
    return mode[0], int.from_bytes(hash_id, "big"), alg[0]
