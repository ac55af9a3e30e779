"""The simulated SIM's persistent memory: a card image kept as a JSON file.

The image is the simulated silicon. Private keys live only here; the public API
hands out public points, file contents and object attributes, never private key
bytes. The applet in this package signs through ``Card._private_key``, which
returns a ``cryptography`` key object and is not meant for callers outside
``safebench_sim``.

JSON shape (all byte strings are upper-case hex)::

    {
      "format": "safebench-card/1",
      "iccid": "89...",                 # 19 or 20 decimal digits
      "imsi": "00101...",               # 15 decimal digits
      "aid": "A0000005590010",          # IoT SAFE applet AID
      "containers": {
        "private_key": {"01": {"label": "<hex>", "attributes": {...}, "value": "<hex>"}},
        "public_key":  {...},
        "file":        {...},
        "secret_key":  {...}
      }
    }

Containers are keyed by kind, then by hex identifier. ``value`` is the content:
the 32-byte private scalar, the 65-byte uncompressed public point (04 X Y), the
file bytes; empty when the container is not filled yet. ``attributes`` maps a
name to the hex value of its IoT SAFE tag (see ``ATTRIBUTE_TAGS``); the state
(4A) and file size (20) are derived from ``value`` so they cannot disagree.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

FORMAT = "safebench-card/1"
STANDARD_AID = bytes.fromhex("A0000005590010")
KINDS = ("private_key", "public_key", "file", "secret_key")
MAX_FILE_SIZE = 0xFFFF  # the file size attribute (tag 20) is two bytes

# Attribute name -> IoT SAFE tag of its TLV in an object information record.
ATTRIBUTE_TAGS = {
    "access": 0x60,  # 01 read, 02 update
    "key_type": 0x4B,  # 13 P-256 persistent, 14 P-256 volatile
    "key_usage": 0x4E,  # 01 general, 02 TLS 1.2 CertificateVerify, 03 TLS 1.3 CertificateVerify
    "file_usage": 0x21,  # 01 general purpose, 02 X.509 certificate
    "functions": 0x61,  # 01 signature, 02 key generation, 04 key agreement, 08 key derivation
    "signature": 0x92,  # 04 ECDSA
    "hash": 0x91,  # two bytes: 0001 SHA-256, 0002 SHA-384, 0004 SHA-512
    "key_agreement": 0x6F,  # 01 ECKA
    "key_derivation": 0x94,  # 01 PRF-SHA256, 02 HKDF
}



def _p256_key(access: str, key_type: str, key_usage: str, functions: str) -> dict[str, str]:
    """Attributes of a P-256 key container that can do ECDSA with SHA-256/384/512 and ECKA."""
    return {"access": access, "key_type": key_type, "key_usage": key_usage, "functions": functions,
            "signature": "04", "hash": "0007", "key_agreement": "01"}


@dataclass
class _Container:
    label: bytes
    attributes: dict[str, bytes]
    value: bytes = b""


@dataclass(frozen=True)
class ObjectInfo:
    """What the card tells about a container: everything but its value."""

    kind: str
    id: bytes
    label: bytes
    attributes: dict[str, bytes] = field(default_factory=dict)
    size: int = 0

    @property
    def filled(self) -> bool:
        return self.size > 0


class Card:
    """A card image: identity (ICCID, IMSI), applet AID and IoT SAFE containers."""

    def __init__(self, iccid: str, imsi: str, aid: bytes, containers: dict[str, dict[bytes, _Container]]):
        self.iccid = iccid
        self.imsi = imsi
        self.aid = aid
        self._containers = {kind: dict(containers.get(kind, {})) for kind in KINDS}

    # -- creation and persistence -------------------------------------------------

    @classmethod
    def new(cls, iccid: str | None = None, imsi: str | None = None) -> Card:
        """A fresh generic card with a P-256 key pair 01 and empty certificate files.

        Layout (the common Thales/wolfSSL one): key pair 01 for signing, file 02
        client certificate, file 03 CA certificate, key pair 04 for ephemeral
        ECDHE (empty), public key 05 for the peer's key (empty).
        """
        card = cls(iccid or random_iccid(), imsi or random_imsi(), STANDARD_AID, {})
        # _p256_key(access, key type, key usage, crypto functions): see ATTRIBUTE_TAGS
        card._add("private_key", b"\x01", b"client-key", _p256_key("02", "13", "03", "03"))
        card._add("public_key", b"\x01", b"client-key", _p256_key("01", "13", "03", "03"))
        card._add("file", b"\x02", b"client-cert", {"access": "01", "file_usage": "02"})
        card._add("file", b"\x03", b"ca-cert", {"access": "01", "file_usage": "02"})
        card._add("private_key", b"\x04", b"ephemeral", _p256_key("02", "14", "01", "06"))
        card._add("public_key", b"\x04", b"ephemeral", _p256_key("01", "14", "01", "06"))
        card._add("public_key", b"\x05", b"peer", _p256_key("03", "13", "01", "05"))
        card.generate_key_pair(b"\x01")
        return card

    @classmethod
    def load(cls, path: str | os.PathLike) -> Card:
        """Read an image written by ``save``; ValueError if it is not one."""
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} card image")
        try:
            containers = {
                kind: {bytes.fromhex(hex_id): _container_from_json(entry)
                       for hex_id, entry in doc["containers"].get(kind, {}).items()}
                for kind in KINDS
            }
            return cls(str(doc["iccid"]), str(doc["imsi"]), bytes.fromhex(doc["aid"]), containers)
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise ValueError(f"{path}: malformed card image ({e!r})") from e

    def save(self, path: str | os.PathLike) -> None:
        """Write the image atomically: a crash leaves either the old or the new image."""
        path = Path(path)
        text = json.dumps(self._to_json(), indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        _fsync_dir(path.parent)  # make the rename itself durable

    # -- queries ------------------------------------------------------------------

    def objects(self, kind: str) -> list[ObjectInfo]:
        """All containers of one kind, in creation order."""
        return [self._info(kind, object_id, c) for object_id, c in self._containers[kind].items()]

    def find(self, kind: str, *, id: bytes | None = None, label: bytes | None = None) -> ObjectInfo | None:
        """The container of ``kind`` with that identifier or that label, or None."""
        for object_id, c in self._containers[kind].items():
            if object_id == id or (label is not None and c.label == label):
                return self._info(kind, object_id, c)
        return None

    def public_key(self, key_id: bytes) -> bytes:
        """Uncompressed point 04 X Y of public key ``key_id`` (empty if not generated yet)."""
        return self._containers["public_key"][key_id].value

    def file(self, file_id: bytes) -> bytes:
        return self._containers["file"][file_id].value

    # -- changes (personalisation and applet operations) --------------------------

    def set_file(self, file_id: bytes, data: bytes) -> None:
        """Replace the content of an existing file container."""
        if len(data) > MAX_FILE_SIZE:
            raise ValueError(f"file content too large ({len(data)} > {MAX_FILE_SIZE} bytes)")
        self._containers["file"][file_id].value = bytes(data)

    def generate_key_pair(self, private_key_id: bytes) -> bytes:
        """New P-256 pair into a private key and the public key with the same label.

        Returns the new public point. The pairing rule (same label) is IoT SAFE's.
        """
        private = self._containers["private_key"][private_key_id]
        public = next(c for c in self._containers["public_key"].values() if c.label == private.label)
        key = ec.generate_private_key(ec.SECP256R1())
        private.value = key.private_numbers().private_value.to_bytes(32, "big")
        public.value = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return public.value

    # -- package internal ---------------------------------------------------------

    def _private_key(self, key_id: bytes) -> ec.EllipticCurvePrivateKey | None:
        """The signing key object of private key ``key_id``; None when empty. Applet use only."""
        scalar = self._containers["private_key"][key_id].value
        if not scalar:
            return None
        return ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())

    def _add(self, kind: str, object_id: bytes, label: bytes, attributes: dict[str, str]) -> None:
        attrs = {name: bytes.fromhex(value) for name, value in attributes.items()}
        self._containers[kind][object_id] = _Container(label, attrs)

    @staticmethod
    def _info(kind: str, object_id: bytes, c: _Container) -> ObjectInfo:
        return ObjectInfo(kind, object_id, c.label, dict(c.attributes), len(c.value))

    def _to_json(self) -> dict:
        return {
            "format": FORMAT,
            "iccid": self.iccid,
            "imsi": self.imsi,
            "aid": self.aid.hex().upper(),
            "containers": {
                kind: {object_id.hex().upper(): _container_to_json(c) for object_id, c in containers.items()}
                for kind, containers in self._containers.items()
            },
        }


def _container_to_json(c: _Container) -> dict:
    return {
        "label": c.label.hex().upper(),
        "attributes": {name: value.hex().upper() for name, value in c.attributes.items()},
        "value": c.value.hex().upper(),
    }


def _container_from_json(entry: dict) -> _Container:
    unknown = set(entry["attributes"]) - set(ATTRIBUTE_TAGS)
    if unknown:
        raise ValueError(f"unknown attributes {sorted(unknown)}")
    return _Container(
        bytes.fromhex(entry["label"]),
        {name: bytes.fromhex(value) for name, value in entry["attributes"].items()},
        bytes.fromhex(entry["value"]),
    )


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def luhn_check_digit(digits: str) -> str:
    """The digit that makes ``digits`` + it pass the Luhn check (ICCIDs use it)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)  # double every second digit, starting next to the check digit
        total += d - 9 if d > 9 else d
    return str(-total % 10)


def random_iccid() -> str:
    """19-digit ICCID: 89 (telecom), 16 random digits, Luhn check digit."""
    body = "89" + "".join(secrets.choice("0123456789") for _ in range(16))
    return body + luhn_check_digit(body)


def random_imsi() -> str:
    """15-digit IMSI on the 001/01 test network."""
    return "00101" + "".join(secrets.choice("0123456789") for _ in range(10))
