"""The IoT SAFE applet (GSMA IoT.05) of the simulated SIM.

It turns command APDUs that the UICC routed to it into IoT SAFE operations on a ``Card``, with
the byte formats and status words real cards were seen to use (docs/iotsafe.md §4
to §6). Where cards differ, the card's profile decides (``card.profile``: CLA convention, tag-33
length form, object list shape, the Thales ``92 02 04`` quirk, applet info tags, wrapped single
object info, READ FILE past the end, number of sessions).

Commands: GET DATA (application, object list with 6300 continuation, C1-C4), READ FILE, GET
RANDOM, COMPUTE SIGNATURE Init/Update (ECDSA P-256; mode 01 full text in one 9B TLV per APDU,
mode 02 last block resumed from the host's intermediate SHA-2 state, mode 03 pad-and-sign;
SHA-256/384/512), VERIFY SIGNATURE Init/Update, GENERATE KEY PAIR, READ PUBLIC KEY, PUT PUBLIC
KEY Init/Update, COMPUTE DH (ECKAS-DH1, raw X), COMPUTE PRF (TLS 1.2 P_SHA256, modes 00/01/02),
COMPUTE HKDF (RFC 5869 Extract), and a profile's vendor Get Version (8n 70).

No command ever returns private key or secret key material. Every persistent change (a key
pair generated, a public key written into a persistent container) calls ``on_change`` so the
image is saved; volatile keys (type 14) are not persisted and die with a card reset.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)

from . import sha2, sw
from .card import ATTRIBUTE_TAGS, KEY_TYPES_P256, Card, ObjectInfo

log = logging.getLogger("safebench_simulator.iotsafe")

INS_PUT_KEY_INIT = 0x24
INS_SIGN_INIT = 0x2A
INS_SIGN_UPDATE = 0x2B
INS_VERIFY_INIT = 0x2C
INS_VERIFY_UPDATE = 0x2D
INS_DH = 0x46
INS_PRF = 0x48
INS_HKDF = 0x4A
INS_VENDOR_VERSION = 0x70  # reaches the applet only with CLA 8n (0n 70 is MANAGE CHANNEL)
INS_GET_RANDOM = 0x84
INS_READ_FILE = 0xB0
INS_GENERATE_KEY_PAIR = 0xB9
INS_GET_DATA = 0xCB
INS_READ_PUBLIC_KEY = 0xCD
INS_PUT_KEY_UPDATE = 0xD8

CLA_OTHER_BITS = 0x7C  # anything but the proprietary bit 80 and the channel bits 03
CLA_PROPRIETARY = 0x80
READ_FILE_DEFAULT_CHUNK = 255  # bytes returned when the host sends no Le (Thales PKCS#11 steps by 255)
ZERO_PAD_CHUNK = 256  # a zero-padding applet always answers this much without Le
MAX_LAST_BLOCK = 128  # mode 02: tag 9A carries at most 128 bytes (Thales' check)
MAX_PUT_KEY_VALUE = 255  # bytes of a Put Public Key value over all blocks (a P-256 value is 69)

MODE_FULL_TEXT = 0x01  # the applet hashes the message (tag 9B)
MODE_LAST_BLOCK = 0x02  # the host hashed whole blocks; the applet finishes (9A, 9C, 9D)
MODE_PAD_AND_SIGN = 0x03  # the host sends the final hash (tag 9E)
ALG_ECDSA = 0x04
FUNCTION_SIGNATURE, FUNCTION_KEY_GENERATION = 0x01, 0x02
FUNCTION_KEY_AGREEMENT, FUNCTION_KEY_DERIVATION = 0x04, 0x08
ACCESS_READ, ACCESS_UPDATE = 0x01, 0x02
KEY_AGREEMENT_ECKA = 0x01
DERIVATION_PRF, DERIVATION_HKDF = 0x01, 0x02
PRF_GENERAL, PRF_PSK, PRF_PSK_ECDHE = 0x00, 0x01, 0x02


@dataclass(frozen=True)
class _Hash:
    algorithm: type[hashes.HashAlgorithm]
    variant: sha2.Variant

    @property
    def name(self) -> str:
        return self.variant.name


HASHES = {
    0x0001: _Hash(hashes.SHA256, sha2.SHA256),
    0x0002: _Hash(hashes.SHA384, sha2.SHA384),
    0x0004: _Hash(hashes.SHA512, sha2.SHA512),
}

# Object reference tags per container kind: (identifier, label).
REF_TAGS = {
    "file": (0x83, 0x73),
    "private_key": (0x84, 0x74),
    "public_key": (0x85, 0x75),
    "secret_key": (0x86, 0x76),
}
INFO_KINDS = {0xC1: "private_key", 0xC2: "public_key", 0xC3: "file", 0xC4: "secret_key"}
INFO_TAGS = {kind: tag for tag, kind in INFO_KINDS.items()}
LIST_ORDER_UNWRAPPED = ("private_key", "public_key", "file", "secret_key")  # the Thales MVP card
LIST_ORDER_WRAPPED = ("private_key", "public_key", "secret_key", "file")  # what Orange's parser scans

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
TAG_LAST_BLOCK, TAG_FULL_TEXT, TAG_FINAL_HASH = 0x9A, 0x9B, 0x9E
TAG_INTERMEDIATE, TAG_HASHED_COUNT = 0x9C, 0x9D  # mode 02: SHA-2 state, bytes it covers
TAG_SIGNATURE, TAG_PUBLIC_KEY, TAG_KEY_TEMPLATE, TAG_POINT = 0x33, 0x34, 0x49, 0x86
TAG_SECRET, TAG_LABEL_SEED, TAG_OUTPUT_LENGTH, TAG_PREMASTER, TAG_SALT = 0xD1, 0xD2, 0xD3, 0xD4, 0xD5
MODE_TAGS = {
    MODE_FULL_TEXT: {TAG_FULL_TEXT},
    MODE_LAST_BLOCK: {TAG_LAST_BLOCK, TAG_INTERMEDIATE, TAG_HASHED_COUNT},
    MODE_PAD_AND_SIGN: {TAG_FINAL_HASH},
}


_Reply = tuple[bytes, int]  # response data with a status word other than 9000


class _Status(Exception):
    """Abort the command with this status word."""

    def __init__(self, sw_: int):
        super().__init__(f"{sw_:04X}")
        self.sw = sw_


@dataclass
class _Session:
    """An open two-phase operation: a signature, a verification or a public key being written."""

    op: str  # "sign" | "verify" | "put_key"
    kind: str  # container kind of the key it holds
    key_id: bytes
    mode: int = 0
    hash: _Hash | None = None
    hasher: hashes.Hash | None = None  # mode 01: running hash of the message so far
    buffer: bytearray = field(default_factory=bytearray)  # put_key: the value so far

    def restart(self) -> None:
        self.hasher = hashes.Hash(self.hash.algorithm()) if self.mode == MODE_FULL_TEXT else None


# -- TLV helpers ----------------------------------------------------------------------

def tlv(tag: int, value: bytes) -> bytes:
    """One-byte tag, one-byte length, value."""
    if len(value) > 0xFF:
        raise ValueError(f"TLV {tag:02X} value too long ({len(value)} bytes)")
    return bytes((tag, len(value))) + value


def parse_tlvs(data: bytes, allowed: set[int], two_byte_length_tag: int | None = None) -> dict[int, bytes]:
    """Flat one-byte-length TLVs; 6A80 on truncation, unknown or repeated tags.

    ``two_byte_length_tag`` (tag 33) may also use the 2-byte length form ``33 00 40``.
    """
    fields: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise _Status(sw.INCORRECT_DATA)
        tag, length, start = data[i], data[i + 1], i + 2
        if tag == two_byte_length_tag and length == 0 and i + 3 <= len(data):
            length, start = data[i + 2], i + 3  # 00 LL: lengths above 255 cannot fit a short APDU anyway
        if tag not in allowed or tag in fields or start + length > len(data):
            raise _Status(sw.INCORRECT_DATA)
        fields[tag] = data[start:start + length]
        i = start + length
    return fields


def object_record(info: ObjectInfo, quirk_92_02_04: bool = False) -> bytes:
    """The information record of one object, unwrapped (no C1..C4 header).

    With the Thales MVP quirk, a one-byte signature algorithm is emitted as ``92 02 04``: the
    length byte says two, one value byte follows (the card does exactly that).
    """
    id_tag, label_tag = REF_TAGS[info.kind]
    record = tlv(label_tag, info.label) if info.label else b""
    record += tlv(id_tag, info.id)
    record += tlv(TAG_ACCESS, info.attributes.get("access", b"\x00"))
    record += tlv(TAG_STATE, b"\x01" if info.filled else b"\x00")
    for name in _RECORD_ATTRIBUTES[info.kind]:
        value = info.attributes.get(name)
        if value is None:
            continue
        if quirk_92_02_04 and name == "signature" and len(value) == 1:
            record += bytes((TAG_SIG_ALG, 0x02)) + value
        else:
            record += tlv(ATTRIBUTE_TAGS[name], value)
    if info.kind == "file":
        record += tlv(TAG_FILE_SIZE, info.size.to_bytes(2, "big"))
    return record


def public_key_value(point: bytes) -> bytes:
    """``34 45 49 43 86 41 04 X Y``: a P-256 point in its key template."""
    return tlv(TAG_PUBLIC_KEY, tlv(TAG_KEY_TEMPLATE, tlv(TAG_POINT, point)))


def p_sha256(secret: bytes, label_seed: bytes, length: int) -> bytes:
    """The TLS 1.2 PRF (RFC 5246 section 5): P_SHA256(secret, label || seed), truncated."""
    out, a = b"", label_seed
    while len(out) < length:
        a = hmac.new(secret, a, hashlib.sha256).digest()
        out += hmac.new(secret, a + label_seed, hashlib.sha256).digest()
    return out[:length]


def psk_premaster(other_secret: bytes, psk: bytes) -> bytes:
    """The ECDHE_PSK pre-master secret of RFC 5489: uint16 length || ECDH output || uint16 length || PSK."""
    return len(other_secret).to_bytes(2, "big") + other_secret + len(psk).to_bytes(2, "big") + psk


# -- the applet -----------------------------------------------------------------------

class IoTSafeApplet:
    """One IoT SAFE applet instance, selectable on several logical channels."""

    def __init__(self, card: Card, on_change: Callable[[], None] | None = None):
        self.card = card
        self.profile = card.profile
        self._on_change = on_change or (lambda: None)
        self._sessions: dict[tuple[int, int], _Session] = {}  # (channel, session number) -> session
        self._list_rest: dict[int, bytes] = {}  # channel -> object list bytes still to send
        self._handlers = {
            INS_GET_DATA: self._get_data,
            INS_READ_FILE: self._read_file,
            INS_GET_RANDOM: self._get_random,
            INS_SIGN_INIT: self._sign_init,
            INS_SIGN_UPDATE: self._sign_update,
            INS_VERIFY_INIT: self._verify_init,
            INS_VERIFY_UPDATE: self._verify_update,
            INS_GENERATE_KEY_PAIR: self._generate_key_pair,
            INS_READ_PUBLIC_KEY: self._read_public_key,
            INS_PUT_KEY_INIT: self._put_key_init,
            INS_PUT_KEY_UPDATE: self._put_key_update,
            INS_DH: self._compute_dh,
            INS_PRF: self._compute_prf,
            INS_HKDF: self._compute_hkdf,
        }
        if self.profile.get("vendor_version"):
            self._handlers[INS_VENDOR_VERSION] = self._vendor_version

    def process(self, cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None) -> tuple[bytes, int]:
        """Run one command. ``le`` is None when absent, else 1..256 (00 means 256)."""
        if cla & CLA_OTHER_BITS or not self._class_accepted(cla):
            return b"", sw.CLA_NOT_SUPPORTED
        handler = self._handlers.get(ins)
        if handler is None:
            return b"", sw.INS_NOT_SUPPORTED
        channel = cla & 0x03
        if (ins, p1, p2) != (INS_GET_DATA, 0x01, 0x01):  # anything else ends an object list transfer
            self._list_rest.pop(channel, None)
        try:
            result = handler(channel, p1, p2, data, le)
        except _Status as status:
            return b"", status.sw
        except Exception:  # a bug here must not take the modem down; a card says "no precise diagnosis"
            log.exception("applet error on %02X %02X %02X %02X", cla, ins, p1, p2)
            return b"", sw.UNKNOWN_ERROR
        return result if isinstance(result, tuple) else (result, sw.OK)

    def deselect(self, channel: int) -> None:
        """The applet lost ``channel`` (re-SELECT, channel closed, card reset): abort its sessions."""
        for key in [k for k in self._sessions if k[0] == channel]:
            del self._sessions[key]
        self._list_rest.pop(channel, None)

    def _class_accepted(self, cla: int) -> bool:
        convention = self.profile["cla"]
        if convention == "proprietary":
            return bool(cla & CLA_PROPRIETARY)
        if convention == "interindustry":
            return not cla & CLA_PROPRIETARY
        return True

    # -- object lookup and sessions -----------------------------------------------

    def _find(self, kind: str, fields: dict[int, bytes]) -> ObjectInfo:
        """Object named by exactly one of its identifier or label TLV."""
        id_tag, label_tag = REF_TAGS[kind]
        if (id_tag in fields) == (label_tag in fields):
            raise _Status(sw.INCORRECT_DATA)
        info = self.card.find(kind, id=fields.get(id_tag), label=fields.get(label_tag))
        if info is None:
            raise _Status(sw.NOT_FOUND)
        return info

    def _reference(self, kind: str, data: bytes) -> ObjectInfo:
        if not data:
            raise _Status(sw.WRONG_LENGTH)
        return self._find(kind, parse_tlvs(data, set(REF_TAGS[kind])))

    def _check_free_session(self, channel: int, number: int) -> None:
        if (channel, number) in self._sessions or len(self._sessions) >= self.profile["max_sessions"]:
            raise _Status(sw.INCORRECT_P1P2)

    def _check_key_free(self, kind: str, key_id: bytes) -> None:
        if any(s.kind == kind and s.key_id == key_id for s in self._sessions.values()):
            raise _Status(sw.CONDITIONS_NOT_SATISFIED)

    def _session(self, op: str, channel: int, p1: int, p2: int) -> _Session:
        session = self._sessions.get((channel, p2))
        if p1 not in (0x00, 0x80) or session is None or session.op != op:
            raise _Status(sw.INCORRECT_P1P2)
        return session

    def _close(self, op: str, channel: int, number: int, data: bytes) -> bytes:
        """Close a session; closing one that is not open is harmless (hosts close blindly)."""
        if data:
            raise _Status(sw.WRONG_LENGTH)
        session = self._sessions.get((channel, number))
        if session is not None and session.op == op:
            del self._sessions[(channel, number)]
        return b""

    # -- GET DATA, READ FILE, GET RANDOM ------------------------------------------

    def _get_data(self, channel: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes | _Reply:
        if p1 == 0x00:
            if p2 != 0x00:
                raise _Status(sw.INCORRECT_P1P2)
            if data:
                raise _Status(sw.WRONG_LENGTH)
            return self._application_info()
        if p1 == 0x01:
            return self._object_list_part(channel, p2, data, le)
        kind = INFO_KINDS.get(p1)
        if kind is None or p2 != 0x00:
            raise _Status(sw.INCORRECT_P1P2)
        record = object_record(self._reference(kind, data), self.profile["quirk_92_02_04"])
        return tlv(p1, record) if self.profile["single_object_info_wrapped"] else record

    def _application_info(self) -> bytes:
        """Capabilities, in the tag order of the Thales MVP card; values from the profile."""
        info = self.profile["applet_info"]
        object_tags = self.profile["applet_info_tags"] == "object"  # the Thales MVP card's, else Orange's
        functions_tag, agreement_tag = (0x61, 0x6F) if object_tags else (0x90, 0x93)
        capacity = info["capacity"]
        return b"".join((
            tlv(0x10, bytes.fromhex(info["version"])),  # SIM Alliance version
            tlv(0x11, bytes.fromhex(info["proprietary_id"])),
            tlv(0xB1, bytes((capacity["file"],))),
            tlv(0xB2, bytes((capacity["private_key"],))),
            tlv(0xB3, bytes((capacity["public_key"],))),
            tlv(0xB4, bytes((capacity["secret_key"],))),
            tlv(functions_tag, bytes.fromhex(info["functions"])),
            tlv(TAG_HASH, bytes.fromhex(info["hashes"])),
            tlv(TAG_SIG_ALG, bytes.fromhex(info["signatures"])),
            tlv(agreement_tag, bytes.fromhex(info["key_agreement"])),
            tlv(0x94, bytes.fromhex(info["key_derivation"])),
            tlv(0xB7, bytes((self.profile["max_sessions"],))),
        ))

    def _object_list_part(self, channel: int, p2: int, data: bytes, le: int | None) -> bytes | _Reply:
        """The object list, a response at a time: 6300 says "repeat with P2 = 01 for more"."""
        if data:
            raise _Status(sw.WRONG_LENGTH)
        if p2 == 0x00:
            rest = self._object_list()
        elif p2 == 0x01:
            rest = self._list_rest.pop(channel, None)
            if rest is None:
                raise _Status(sw.CONDITIONS_NOT_SATISFIED)
        else:
            raise _Status(sw.INCORRECT_P1P2)
        size = self.profile["object_list_chunk"]
        if le is not None and le < 256:
            size = min(size, le)
        part, rest = rest[:size], rest[size:]
        if rest:
            self._list_rest[channel] = rest
            return part, sw.MORE_DATA_REPEAT
        return part

    def _object_list(self) -> bytes:
        quirk, shape = self.profile["quirk_92_02_04"], self.profile["object_list_shape"]
        if shape == "unwrapped":
            return b"".join(object_record(info, quirk) for kind in LIST_ORDER_UNWRAPPED
                            for info in self.card.objects(kind))
        out = bytearray()
        for kind in LIST_ORDER_WRAPPED:
            records = [object_record(info, quirk) for info in self.card.objects(kind)]
            if shape == "per_object":
                out += b"".join(tlv(INFO_TAGS[kind], r) for r in records)
                continue
            group = b""  # per_class: one wrapper per class, a second one if 255 bytes do not hold it
            for r in records:
                if len(group) + len(r) > 0xFF:
                    out += tlv(INFO_TAGS[kind], group)
                    group = b""
                group += r
            if group:
                out += tlv(INFO_TAGS[kind], group)
        return bytes(out)

    def _read_file(self, channel: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        offset = p1 << 8 | p2
        info = self._reference("file", data)
        if not info.attribute("access") & ACCESS_READ:
            raise _Status(sw.SECURITY_STATUS_NOT_SATISFIED)
        content = self.card.file(info.id)
        if self.profile["read_file_eof"] == "zero_pad":  # never an error: zeros past the end
            size = le or ZERO_PAD_CHUNK
            chunk = content[offset:offset + size]
            return chunk + bytes(size - len(chunk))
        if offset >= len(content):
            raise _Status(sw.WRONG_OFFSET)
        return content[offset:offset + (le or READ_FILE_DEFAULT_CHUNK)]

    def _get_random(self, channel: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        if p1 or p2:
            raise _Status(sw.INCORRECT_P1P2)
        if data or le is None:
            raise _Status(sw.WRONG_LENGTH)
        return os.urandom(le)

    def _vendor_version(self, channel: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        if p1 or p2:
            raise _Status(sw.INCORRECT_P1P2)
        if data:
            raise _Status(sw.WRONG_LENGTH)
        return bytes.fromhex(self.profile["vendor_version"])

    # -- COMPUTE SIGNATURE, VERIFY SIGNATURE --------------------------------------

    def _sign_init(self, channel: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        return self._signature_init("sign", "private_key", channel, p1, p2, data)

    def _verify_init(self, channel: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        return self._signature_init("verify", "public_key", channel, p1, p2, data)

    def _signature_init(self, op: str, kind: str, channel: int, p1: int, p2: int, data: bytes) -> bytes:
        if p1 == 0x01:
            return self._close(op, channel, p2, data)
        if p1 != 0x00:
            raise _Status(sw.INCORRECT_P1P2)
        self._check_free_session(channel, p2)
        if not data:
            raise _Status(sw.WRONG_LENGTH)
        fields = parse_tlvs(data, {*REF_TAGS[kind], TAG_MODE, TAG_HASH, TAG_SIG_ALG})
        key = self._find(kind, fields)
        mode, hash_id, alg = _sign_parameters(fields)
        if mode not in MODE_TAGS:
            raise _Status(sw.INCORRECT_DATA)
        if hash_id not in HASHES or not hash_id & key.attribute("hash"):
            raise _Status(sw.INCORRECT_DATA)
        if alg != ALG_ECDSA or not alg & key.attribute("signature"):
            raise _Status(sw.INCORRECT_DATA)
        if not key.filled or not key.attribute("functions") & FUNCTION_SIGNATURE:
            raise _Status(sw.CONDITIONS_NOT_SATISFIED)
        self._check_key_free(kind, key.id)
        session = _Session(op, kind, key.id, mode, HASHES[hash_id])
        session.restart()
        self._sessions[(channel, p2)] = session
        return b""

    def _sign_update(self, channel: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        session = self._session("sign", channel, p1, p2)
        last = p1 == 0x80
        digest = self._digest(session, last, parse_tlvs(data, MODE_TAGS[session.mode]), text_required=True)
        if digest is None:
            return b""
        signature = self._sign(session, digest)
        if self.profile["sig_length_form"] == 2:
            return bytes((TAG_SIGNATURE, 0x00, len(signature))) + signature
        return tlv(TAG_SIGNATURE, signature)

    def _verify_update(self, channel: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        session = self._session("verify", channel, p1, p2)
        last = p1 == 0x80
        allowed = MODE_TAGS[session.mode] | ({TAG_SIGNATURE} if last else set())
        fields = parse_tlvs(data, allowed, two_byte_length_tag=TAG_SIGNATURE)
        signature = fields.get(TAG_SIGNATURE)
        if last and (signature is None or len(signature) != 64):
            raise _Status(sw.INCORRECT_DATA)
        digest = self._digest(session, last, fields, text_required=not last)
        if digest is None:
            return b""
        point = self.card.public_key(session.key_id)
        if not point:
            raise _Status(sw.CONDITIONS_NOT_SATISFIED)
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        der = encode_dss_signature(r, s)
        try:
            key.verify(der, digest, ec.ECDSA(Prehashed(session.hash.algorithm())))
        except (InvalidSignature, ValueError):
            raise _Status(sw.SIGNATURE_MISMATCH) from None
        return b""

    def _digest(self, session: _Session, last: bool, fields: dict[int, bytes],
                text_required: bool) -> bytes | None:
        """The digest to sign or verify from this block; None while a full-text message goes on."""
        if session.mode == MODE_PAD_AND_SIGN:
            if not last:
                raise _Status(sw.INCORRECT_P1P2)
            digest = fields.get(TAG_FINAL_HASH)
            if digest is None or len(digest) != session.hash.variant.digest_size:
                raise _Status(sw.INCORRECT_DATA)
            return digest
        if session.mode == MODE_LAST_BLOCK:
            if not last:
                raise _Status(sw.INCORRECT_P1P2)
            block, state = fields.get(TAG_LAST_BLOCK), fields.get(TAG_INTERMEDIATE)
            count = fields.get(TAG_HASHED_COUNT)
            if block is None or state is None or count is None or len(count) != 4 \
                    or len(block) > MAX_LAST_BLOCK:
                raise _Status(sw.INCORRECT_DATA)
            try:
                return sha2.finish(session.hash.variant, state, int.from_bytes(count, "big"), block)
            except ValueError:
                raise _Status(sw.INCORRECT_DATA) from None
        block = fields.get(TAG_FULL_TEXT)
        if block is None and text_required:
            raise _Status(sw.INCORRECT_DATA)
        session.hasher.update(block or b"")
        if not last:
            return None
        digest = session.hasher.finalize()
        session.restart()  # the session stays open for another message until closed
        return digest

    def _sign(self, session: _Session, digest: bytes) -> bytes:
        """ECDSA over a digest, as raw r||s with each half left-padded to 32 bytes."""
        key = self.card._private_key(session.key_id)
        if key is None:
            raise _Status(sw.CONDITIONS_NOT_SATISFIED)
        der = key.sign(digest, ec.ECDSA(Prehashed(session.hash.algorithm())))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    # -- keys: GENERATE KEY PAIR, READ PUBLIC KEY, PUT PUBLIC KEY -----------------

    def _generate_key_pair(self, channel: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        if p1 or p2:
            raise _Status(sw.INCORRECT_P1P2)
        private = self._reference("private_key", data)
        public_id = self.card.pair_of(private.id)  # the pair: the public key with the same label
        if public_id is None:
            raise _Status(sw.CONDITIONS_NOT_SATISFIED)
        public = self.card.find("public_key", id=public_id)
        for key in (private, public):
            if not key.attribute("functions") & FUNCTION_KEY_GENERATION \
                    or key.attribute("key_type") not in KEY_TYPES_P256:
                raise _Status(sw.CONDITIONS_NOT_SATISFIED)
            self._check_key_free(key.kind, key.id)
        point = self.card.generate_key_pair(private.id)
        if not (private.volatile and public.volatile):
            self._on_change()
        return tlv(REF_TAGS["private_key"][0], private.id) + tlv(REF_TAGS["public_key"][0], public_id) \
            + public_key_value(point)

    def _read_public_key(self, channel: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        if p1 or p2:
            raise _Status(sw.INCORRECT_P1P2)
        key = self._reference("public_key", data)
        if not key.attribute("access") & ACCESS_READ:
            raise _Status(sw.SECURITY_STATUS_NOT_SATISFIED)
        if not key.filled:
            raise _Status(sw.CONDITIONS_NOT_SATISFIED)
        return public_key_value(self.card.public_key(key.id))

    def _put_key_init(self, channel: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        if p1 == 0x01:
            return self._close("put_key", channel, p2, data)
        if p1 != 0x00:
            raise _Status(sw.INCORRECT_P1P2)
        self._check_free_session(channel, p2)
        key = self._reference("public_key", data)
        if not key.attribute("access") & ACCESS_UPDATE:
            raise _Status(sw.SECURITY_STATUS_NOT_SATISFIED)
        if key.attribute("key_type") not in KEY_TYPES_P256:
            raise _Status(sw.CONDITIONS_NOT_SATISFIED)
        self._check_key_free("public_key", key.id)
        self._sessions[(channel, p2)] = _Session("put_key", "public_key", key.id)
        return b""

    def _put_key_update(self, channel: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        """One ``34 LL <part>`` per block; the parts make ``49 43 86 41 04 X Y``, stored on the last."""
        session = self._session("put_key", channel, p1, p2)
        part = parse_tlvs(data, {TAG_PUBLIC_KEY}).get(TAG_PUBLIC_KEY)
        if part is None or len(session.buffer) + len(part) > MAX_PUT_KEY_VALUE:
            session.buffer.clear()
            raise _Status(sw.INCORRECT_DATA)
        session.buffer += part
        if p1 != 0x80:
            return b""
        value, session.buffer = bytes(session.buffer), bytearray()
        point = _point_from_template(value)
        try:
            self.card.put_public_key(session.key_id, point)
        except ValueError:
            raise _Status(sw.INCORRECT_DATA) from None  # not a point on P-256
        if not self.card.find("public_key", id=session.key_id).volatile:
            self._on_change()
        return b""

    # -- key agreement and derivation: COMPUTE DH, PRF, HKDF -----------------------

    def _compute_dh(self, channel: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        """ECKAS-DH1: the raw 32-byte X coordinate of the shared point, nothing stored."""
        if p1 or p2:
            raise _Status(sw.INCORRECT_P1P2)
        if not data:
            raise _Status(sw.WRONG_LENGTH)
        fields = parse_tlvs(data, {*REF_TAGS["private_key"], *REF_TAGS["public_key"]})
        private = self._find("private_key", fields)
        peer = self._find("public_key", fields)
        if not private.filled or not private.attribute("functions") & FUNCTION_KEY_AGREEMENT \
                or not private.attribute("key_agreement") & KEY_AGREEMENT_ECKA:
            raise _Status(sw.CONDITIONS_NOT_SATISFIED)
        self._check_key_free("private_key", private.id)
        if not peer.filled:  # Thales: "server public key must be set before DH compute"
            raise _Status(sw.CONDITIONS_NOT_SATISFIED)
        peer_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), self.card.public_key(peer.id))
        return self.card._private_key(private.id).exchange(ec.ECDH(), peer_key)

    def _compute_prf(self, channel: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        """TLS 1.2 PRF. P1 00: secret in D1; 01: secret on the card (86/76); 02: card PSK, ECDHE in D4."""
        if p1 not in (PRF_GENERAL, PRF_PSK, PRF_PSK_ECDHE) or p2:
            raise _Status(sw.INCORRECT_P1P2)
        if not data:
            raise _Status(sw.WRONG_LENGTH)
        fields = parse_tlvs(data, {*REF_TAGS["secret_key"], TAG_SECRET, TAG_PREMASTER, TAG_LABEL_SEED,
                                   TAG_OUTPUT_LENGTH})
        label_seed, length = fields.get(TAG_LABEL_SEED), fields.get(TAG_OUTPUT_LENGTH)
        if label_seed is None or length is None or len(length) != 1 or length[0] == 0:
            raise _Status(sw.INCORRECT_DATA)
        referenced = any(t in fields for t in REF_TAGS["secret_key"])
        if p1 == PRF_GENERAL:
            if TAG_SECRET not in fields or referenced or TAG_PREMASTER in fields:
                raise _Status(sw.INCORRECT_DATA)
            secret = fields[TAG_SECRET]
        else:
            if TAG_SECRET in fields or (TAG_PREMASTER in fields) != (p1 == PRF_PSK_ECDHE):
                raise _Status(sw.INCORRECT_DATA)
            secret = self._derivation_secret(fields, DERIVATION_PRF)
            if p1 == PRF_PSK_ECDHE:
                secret = psk_premaster(fields[TAG_PREMASTER], secret)
        return p_sha256(secret, label_seed, length[0])

    def _compute_hkdf(self, channel: int, p1: int, p2: int, data: bytes, le: int | None) -> bytes:
        """HKDF-Extract (RFC 5869): PRK = HMAC-Hash(salt, IKM). The salt must not be empty (Thales)."""
        if p1 or p2:
            raise _Status(sw.INCORRECT_P1P2)
        if not data:
            raise _Status(sw.WRONG_LENGTH)
        fields = parse_tlvs(data, {*REF_TAGS["secret_key"], TAG_SECRET, TAG_SALT, TAG_HASH})
        referenced = any(t in fields for t in REF_TAGS["secret_key"])
        salt, hash_id = fields.get(TAG_SALT), fields.get(TAG_HASH)
        if referenced == (TAG_SECRET in fields) or not salt or hash_id is None or len(hash_id) != 2 \
                or int.from_bytes(hash_id, "big") not in HASHES:
            raise _Status(sw.INCORRECT_DATA)
        ikm = self._derivation_secret(fields, DERIVATION_HKDF) if referenced else fields[TAG_SECRET]
        return hmac.new(salt, ikm, HASHES[int.from_bytes(hash_id, "big")].name).digest()

    def _derivation_secret(self, fields: dict[int, bytes], algorithm: int) -> bytes:
        info = self._find("secret_key", fields)
        if not info.filled or not info.attribute("functions") & FUNCTION_KEY_DERIVATION \
                or not info.attribute("key_derivation") & algorithm:
            raise _Status(sw.CONDITIONS_NOT_SATISFIED)
        return self.card._secret(info.id)


def _sign_parameters(fields: dict[int, bytes]) -> tuple[int, int, int]:
    """(mode, hash id, signature algorithm) from the A1, 91 and 92 TLVs of an Init."""
    mode, hash_id, alg = fields.get(TAG_MODE), fields.get(TAG_HASH), fields.get(TAG_SIG_ALG)
    if mode is None or hash_id is None or alg is None or len(mode) != 1 or len(hash_id) != 2 or len(alg) != 1:
        raise _Status(sw.INCORRECT_DATA)
    return mode[0], int.from_bytes(hash_id, "big"), alg[0]


def _point_from_template(value: bytes) -> bytes:
    """The point of a ``49 LL 86 LL <point>`` key template; 6A80 for anything else."""
    template = parse_tlvs(value, {TAG_KEY_TEMPLATE}).get(TAG_KEY_TEMPLATE)
    if template is None:
        raise _Status(sw.INCORRECT_DATA)
    point = parse_tlvs(template, {TAG_POINT}).get(TAG_POINT)
    if point is None or len(point) != 65 or point[0] != 0x04:
        raise _Status(sw.INCORRECT_DATA)
    return point
