"""The simulated SIM's persistent memory: a card image kept as a JSON file.

The image is the simulated silicon. Private keys and secrets live only here; the public API
hands out public points, file contents and object attributes, never private key or secret
bytes. The applet in this package uses ``Card._private_key`` and ``Card._secret``, which are
not meant for callers outside ``safebench_simulator``.

A card is made from a profile (``profile.py``: ``generic``, ``thales-mvp``, ``zariot``) and
keeps that profile's switches, so the applet, the UICC and the modem read their behaviour from
the image. JSON shape (all byte strings are upper-case hex)::

    {
      "format": "safebench-card/1",
      "iccid": "89...",                 # 19 or 20 decimal digits: the enabled operator profile's
      "imsi": "00101...",               # 15 decimal digits
      "operators": [{"iccid": ..., "imsi": ...}],  # optional: the eSIM's other operator profiles
      "aid": "A0000005590010",          # IoT SAFE applet AID
      "profile": {"name": "generic", "cla": "both", ..., "modem": {...}, "timing": {...}},
      "roles": {"signing_key": "01", "client_cert": "02", ...},
      "containers": {
        "private_key": {"01": {"label": "<hex>", "attributes": {...}, "value": "<hex>"}},
        "public_key":  {...},
        "file":        {...},
        "secret_key":  {...}
      }
    }

Containers are keyed by kind, then by hex identifier (any length). ``value`` is the content:
the 32-byte private scalar, the 65-byte uncompressed public point (04 X Y), the file bytes,
the secret; empty when the container is not filled. ``attributes`` maps a name to the hex
value of its IoT SAFE tag (see ``ATTRIBUTE_TAGS``); the state (4A) and file size (20) are
derived from ``value`` so they cannot disagree. Images without ``profile``/``roles`` (older
ones) load as the generic profile.

Volatile keys (key type 14, the ECDHE pair) live in RAM on a real card: they are never written
to the image and ``clear_volatile`` (a card reset) empties them.
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

from . import profile as profiles

FORMAT = "safebench-card/1"
STANDARD_AID = bytes.fromhex("A0000005590010")
KINDS = profiles.KINDS
ROLES = tuple(profiles.ROLE_KINDS)
MAX_FILE_SIZE = 0xFFFF  # the file size attribute (tag 20) is two bytes
KEY_TYPES_P256 = (0x13, 0x14)  # persistent, volatile
KEY_TYPE_VOLATILE = 0x14
SECRET_SIZE = 32  # bytes of a generated secret
BOOTSTRAP_KEY, BOOTSTRAP_CERT = b"bootstrap-key", b"bootstrap-cert"  # labels of a factory card's bootstrap identity

# Attribute name -> IoT SAFE tag of its TLV in an object information record.
ATTRIBUTE_TAGS = {
    "access": 0x60,  # 01 read, 02 update
    "key_type": 0x4B,  # 13 P-256 persistent, 14 P-256 volatile, A0 HMAC-capable secret
    "key_usage": 0x4E,  # 01 general, 02 TLS 1.2 CertificateVerify, 03 TLS 1.3 CertificateVerify
    "file_usage": 0x21,  # 01 general purpose, 02 X.509 certificate
    "functions": 0x61,  # 01 signature, 02 key generation, 04 key agreement, 08 key derivation
    "signature": 0x92,  # 04 ECDSA
    "hash": 0x91,  # two bytes: 0001 SHA-256, 0002 SHA-384, 0004 SHA-512
    "key_agreement": 0x6F,  # 01 ECKA
    "key_derivation": 0x94,  # 01 PRF-SHA256, 02 HKDF
}


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

    def attribute(self, name: str) -> int:
        """An attribute as an integer (0 when absent)."""
        return int.from_bytes(self.attributes.get(name, b""), "big")

    @property
    def volatile(self) -> bool:
        return self.attribute("key_type") == KEY_TYPE_VOLATILE


class Card:
    """A card image: identity (ICCID, IMSI), applet AID, profile switches and IoT SAFE containers."""

    def __init__(self, iccid: str, imsi: str, aid: bytes, containers: dict[str, dict[bytes, _Container]],
                 profile: dict | None = None, roles: dict[str, bytes] | None = None):
        self.iccid = iccid
        self.imsi = imsi
        self.aid = aid
        if profile is None:
            profile = profiles.card_profile(profiles.load(profiles.DEFAULT))
        self.profile = profile
        self._containers = {kind: dict(containers.get(kind, {})) for kind in KINDS}
        self._roles = dict(roles) if roles is not None else _default_roles(self._containers)
        self.operators: list[dict] = []  # the other operator profiles of an eSIM, {"iccid", "imsi"}

    def switch_operator(self, iccid: str | None = None, imsi: str | None = None) -> str:
        """Enable another operator profile (an eSIM profile switch): `iccid`'s (a new one if the card has no
        such profile; with no `iccid`, the first other profile, or a new one). The IoT SAFE applet and its
        containers are not part of an operator profile: they stay as they are. Returns the new ICCID."""
        others = [p for p in self.operators if iccid is None or p["iccid"] == iccid]
        chosen = others[0] if others else {"iccid": iccid or random_iccid(), "imsi": imsi or random_imsi()}
        if chosen["iccid"] == self.iccid:
            raise ValueError(f"the operator profile {self.iccid} is the enabled one")
        self.operators = [p for p in self.operators if p is not chosen] + [{"iccid": self.iccid, "imsi": self.imsi}]
        self.iccid, self.imsi = _digits(chosen["iccid"]), _digits(chosen["imsi"])
        return self.iccid

    # -- creation and persistence -------------------------------------------------

    @classmethod
    def new(cls, profile: str | os.PathLike = profiles.DEFAULT, iccid: str | None = None,
            imsi: str | None = None, factory: bool = False) -> Card:
        """A fresh card of ``profile`` (a shipped name or a profile file): keys generated, files as given.

        The generic layout (the common Thales/wolfSSL one): key pair 01 for signing, file 02
        client certificate, file 03 CA certificate (both empty), volatile key pair 04 for
        ECDHE (empty), public key 05 for the peer's key (empty), HMAC-capable secret 06.

        ``factory``: the card as it ships before zero-touch enrolment (see ``_make_factory``).
        """
        doc = profiles.load(profile)
        card = cls(iccid or random_iccid(), imsi or random_imsi(), bytes.fromhex(doc["aid"]), {},
                   profiles.card_profile(doc), {})
        for c in doc["containers"]:
            object_id = bytes.fromhex(c["id"])
            value = b"" if c["value"] == "generate" else bytes.fromhex(c["value"])
            attributes = {name: bytes.fromhex(v) for name, v in c["attributes"].items()}
            card._containers[c["kind"]][object_id] = _Container(c["label"].encode(), attributes, value)
            if c.get("role"):
                card._roles[c["role"]] = object_id
        for c in doc["containers"]:
            if c["value"] == "generate" and c["kind"] == "private_key":
                card.generate_key_pair(bytes.fromhex(c["id"]))
            elif c["value"] == "generate":
                secret = card._containers["secret_key"][bytes.fromhex(c["id"])]
                secret.value = secrets.token_bytes(SECRET_SIZE)
        if factory:
            card._make_factory()
        return card

    @classmethod
    def load(cls, path: str | os.PathLike) -> Card:
        """Read an image written by ``save``; ValueError if it is not one."""
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: not a {FORMAT} card image ({e})") from e
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} card image")
        try:
            containers = {
                kind: {_id(hex_id): _container_from_json(entry)
                       for hex_id, entry in doc["containers"].get(kind, {}).items()}
                for kind in KINDS
            }
            profile = doc.get("profile")
            if profile is not None:
                profile = profiles.check_card_profile(profile, str(path))
            roles = doc.get("roles")
            if roles is not None:
                roles = {name: _id(hex_id) for name, hex_id in roles.items()}
                _check_roles(roles, containers)
            card = cls(_digits(doc["iccid"]), _digits(doc["imsi"]), bytes.fromhex(doc["aid"]), containers,
                       profile, roles)
            card.operators = [{"iccid": _digits(p["iccid"]), "imsi": _digits(p["imsi"])}
                              for p in doc.get("operators", [])]
            return card
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise ValueError(f"{path}: malformed card image ({e})") from e

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

    def role(self, name: str) -> bytes | None:
        """The ID of the container playing ``name`` (see ROLES); None if this card has none.

        Roles: signing_key (private key), client_cert and ca_cert (files), ephemeral_key
        (private key), peer_key (public key), secret (secret key), enrolment_key (private key: a
        factory card's operational key, empty until enrolment). KeyError for other names.
        """
        if name not in profiles.ROLE_KINDS:
            raise KeyError(f"unknown role {name!r} (one of {', '.join(ROLES)})")
        return self._roles.get(name)

    def pair_of(self, private_key_id: bytes) -> bytes | None:
        """The ID of the public key paired with a private key (same label), or None."""
        private = self._containers["private_key"].get(private_key_id)
        if private is None or not private.label:
            return None
        return next((i for i, c in self._containers["public_key"].items() if c.label == private.label), None)

    def public_key(self, key_id: bytes) -> bytes:
        """Uncompressed point 04 X Y of public key ``key_id`` (empty if not generated yet).

        ``key_id`` may also name a private key: its paired public key is meant (useful where
        the pair has two IDs, like "006"/"007" on the ZARIOT profile). KeyError if neither.
        """
        if key_id not in self._containers["public_key"]:
            paired = self.pair_of(key_id)
            if paired is None:
                raise KeyError(key_id)
            key_id = paired
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
        public_id = self.pair_of(private_key_id)
        if public_id is None:
            raise KeyError(f"private key {private_key_id.hex()} has no public key with its label")
        key = ec.generate_private_key(ec.SECP256R1())
        self._containers["private_key"][private_key_id].value = \
            key.private_numbers().private_value.to_bytes(32, "big")
        public = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        self._containers["public_key"][public_id].value = public
        return public

    def put_public_key(self, public_key_id: bytes, point: bytes) -> None:
        """Store a P-256 point (04 X Y) in a public key container; ValueError if it is not on the curve."""
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        if len(point) != 65:
            raise ValueError("not an uncompressed P-256 point")
        self._containers["public_key"][public_key_id].value = bytes(point)

    def clear_volatile(self) -> None:
        """A card reset: volatile keys (key type 14) lose their value."""
        for kind in ("private_key", "public_key"):
            for c in self._containers[kind].values():
                if c.attributes.get("key_type") == bytes((KEY_TYPE_VOLATILE,)):
                    c.value = b""

    # -- package internal ---------------------------------------------------------

    def _make_factory(self) -> None:
        """Factory state: a new bootstrap key pair (generated) and bootstrap certificate file (empty, for the
        manufacturer CA's certificate) with the attributes of the profile's signing key pair and client
        certificate file, which are emptied: the SIM generates the operational key at enrolment. The
        bootstrap containers take the signing_key and client_cert roles, the operational key enrolment_key.
        New IDs follow the highest ID of the signing key's width: the pair the next one, the file the one after.
        """
        key, cert = self._roles.get("signing_key"), self._roles.get("client_cert")
        public = self.pair_of(key) if key is not None else None
        if public is None or cert is None:
            raise ValueError(f"profile {self.profile['name']!r} has no signing key pair or client certificate")
        labels = {c.label for by_id in self._containers.values() for c in by_id.values()}
        if {BOOTSTRAP_KEY, BOOTSTRAP_CERT} & labels:
            raise ValueError(f"profile {self.profile['name']!r} already uses the bootstrap labels")
        key_id, cert_id = _next_ids(self._containers, len(key), 2)
        for kind, old, new, label in (("private_key", key, key_id, BOOTSTRAP_KEY),
                                      ("public_key", public, key_id, BOOTSTRAP_KEY),
                                      ("file", cert, cert_id, BOOTSTRAP_CERT)):
            operational = self._containers[kind][old]
            self._containers[kind][new] = _Container(label, dict(operational.attributes))
            operational.value = b""
        self._roles.update(signing_key=key_id, client_cert=cert_id, enrolment_key=key)
        self.generate_key_pair(key_id)

    def _private_key(self, key_id: bytes) -> ec.EllipticCurvePrivateKey | None:
        """The key object of private key ``key_id``; None when empty. Applet use only."""
        scalar = self._containers["private_key"][key_id].value
        if not scalar:
            return None
        return ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1())

    def _secret(self, secret_id: bytes) -> bytes:
        """The value of secret key ``secret_id`` (empty when not filled). Applet use only."""
        return self._containers["secret_key"][secret_id].value

    @staticmethod
    def _info(kind: str, object_id: bytes, c: _Container) -> ObjectInfo:
        return ObjectInfo(kind, object_id, c.label, dict(c.attributes), len(c.value))

    def _to_json(self) -> dict:
        return {
            "format": FORMAT,
            "iccid": self.iccid,
            "imsi": self.imsi,
            "aid": self.aid.hex().upper(),
            "profile": self.profile,
            "roles": {name: object_id.hex().upper() for name, object_id in self._roles.items()},
            **({"operators": self.operators} if self.operators else {}),
            "containers": {
                kind: {object_id.hex().upper(): _container_to_json(c) for object_id, c in containers.items()}
                for kind, containers in self._containers.items()
            },
        }


def _container_to_json(c: _Container) -> dict:
    volatile = c.attributes.get("key_type") == bytes((KEY_TYPE_VOLATILE,))
    return {
        "label": c.label.hex().upper(),
        "attributes": {name: value.hex().upper() for name, value in c.attributes.items()},
        "value": "" if volatile else c.value.hex().upper(),  # RAM contents are not persisted
    }


def _container_from_json(entry: dict) -> _Container:
    unknown = set(entry["attributes"]) - set(ATTRIBUTE_TAGS)
    if unknown:
        raise ValueError(f"unknown attributes {sorted(unknown)}")
    value = bytes.fromhex(entry["value"])
    if len(value) > MAX_FILE_SIZE:
        raise ValueError("container value too large")
    return _Container(
        bytes.fromhex(entry["label"]),
        {name: bytes.fromhex(value) for name, value in entry["attributes"].items()},
        value,
    )


def _id(hex_id: str) -> bytes:
    object_id = bytes.fromhex(hex_id)
    if not 1 <= len(object_id) <= profiles.MAX_ID:
        raise ValueError(f"object ID {hex_id!r} must be 1..{profiles.MAX_ID} bytes")
    return object_id


def _next_ids(containers: dict[str, dict[bytes, _Container]], width: int, count: int) -> list[bytes]:
    """`count` unused IDs of `width` bytes after the highest one in use; ASCII-digit IDs ("006") stay digits."""
    top = max(i for by_id in containers.values() for i in by_id if len(i) == width)  # same width: bytes order = numeric
    digits = top.isdigit()
    start = int(top) if digits else int.from_bytes(top, "big")
    numbers = range(start + 1, start + 1 + count)
    if numbers[-1] >= (10 if digits else 256) ** width:
        raise ValueError(f"no free {width}-byte container IDs after {top.hex().upper()}")
    return [str(n).zfill(width).encode() if digits else n.to_bytes(width, "big") for n in numbers]


def _digits(value: object) -> str:
    if not isinstance(value, str) or not value.isdigit():
        raise ValueError(f"{value!r} is not a string of digits")
    return value


def _default_roles(containers: dict[str, dict[bytes, _Container]]) -> dict[str, bytes]:
    """Roles of an image written before roles existed: the generic layout's IDs, where present."""
    generic = {"signing_key": b"\x01", "client_cert": b"\x02", "ca_cert": b"\x03", "ephemeral_key": b"\x04",
               "peer_key": b"\x05", "secret": b"\x06"}
    return {name: i for name, i in generic.items() if i in containers[profiles.ROLE_KINDS[name]]}


def _check_roles(roles: dict[str, bytes], containers: dict[str, dict[bytes, _Container]]) -> None:
    for name, object_id in roles.items():
        kind = profiles.ROLE_KINDS.get(name)
        if kind is None or object_id not in containers[kind]:
            raise ValueError(f"role {name!r} names no {kind or 'known'} container")


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
