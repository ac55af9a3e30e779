"""Checking signed readings (COSE_Sign1 / ES256 over SenML-CBOR) against the device registry.

Only third-party code decides: cbor2 takes the message apart (keeping the exact bytes that were
signed), pycose verifies the signature, and cryptography checks it a second time on its own. Each
reading gets a verdict: verified, or the reason it is not.
"""

import datetime
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pycose.keys import EC2Key
from pycose.messages import Sign1Message

from . import verify
from .errors import ReadingError, VerificationError

COSE_SIGN1_TAG = 18
HDR_ALG, HDR_KID, ES256 = 1, 4, -7
SENML_BN, SENML_BT, SENML_N, SENML_U, SENML_V = -2, -3, 0, 1, 2
FUTURE_SKEW = datetime.timedelta(minutes=5)


class Registry:
    """Known devices by kid (SHA-256 of the certificate): ICCID, certificate, last sequence number seen."""

    def __init__(self, path):
        self.path = Path(path)
        self.devices = json.loads(self.path.read_text()) if self.path.exists() else {}

    def add(self, cert_der: bytes, iccid: str) -> str:
        import hashlib

        kid = hashlib.sha256(cert_der).hexdigest()
        self.devices[kid] = {"iccid": iccid, "certificate": cert_der.hex()}
        self.devices[kid].setdefault("last_seq", 0)
        return kid

    def last_seq(self):
        """kid -> highest sequence number accepted from a live stream; write back with `save`."""
        return _LastSeq(self)

    def certificate_der(self, kid: str) -> bytes | None:
        dev = self.devices.get(kid)
        return bytes.fromhex(dev["certificate"]) if dev else None

    def save(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(self.devices, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


class _LastSeq(dict):
    def __init__(self, registry):
        super().__init__({kid: d.get("last_seq", 0) for kid, d in registry.devices.items()})
        self.registry = registry

    def __setitem__(self, kid, seq):
        super().__setitem__(kid, seq)
        self.registry.devices[kid]["last_seq"] = seq


@dataclass
class Verdict:
    ok: bool
    reason: str = "verified"
    kid: str = ""
    iccid: str = ""
    seq: int | None = None
    time: datetime.datetime | None = None
    values: list = field(default_factory=list)

    def as_dict(self):
        return {"verified": self.ok, "reason": self.reason, "kid": self.kid, "iccid": self.iccid, "seq": self.seq,
                "time": self.time.isoformat() if self.time else None, "values": self.values}


def _parts(cose: bytes):
    try:
        msg = cbor2.loads(cose)
    except Exception as e:
        raise ReadingError(f"not CBOR ({e})") from None
    if not isinstance(msg, cbor2.CBORTag) or msg.tag != COSE_SIGN1_TAG or len(msg.value) != 4:
        raise ReadingError("not a tagged COSE_Sign1 message")
    protected, unprotected, payload, signature = msg.value
    if not all(isinstance(x, bytes) for x in (protected, payload, signature)) or not isinstance(unprotected, dict):
        raise ReadingError("malformed COSE_Sign1 structure")
    if cbor2.loads(protected) != {HDR_ALG: ES256}:
        raise ReadingError("algorithm is not ES256")
    kid = unprotected.get(HDR_KID)
    if not isinstance(kid, bytes):
        raise ReadingError("no kid in the unprotected header")
    return protected, payload, signature, kid


def _check_signature(cose, protected, payload, signature, cert):
    numbers = cert.public_key().public_numbers()
    msg = Sign1Message.decode(cose)
    msg.key = EC2Key(crv="P_256", x=numbers.x.to_bytes(32, "big"), y=numbers.y.to_bytes(32, "big"))
    if not msg.verify_signature():
        raise ReadingError("bad signature (payload or signature tampered)")
    # Second opinion over the received bytes, independent of pycose.
    to_sign = cbor2.dumps(["Signature1", protected, b"", payload])
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        cert.public_key().verify(der, to_sign, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ReadingError("bad signature (cryptography disagrees with pycose)") from None


def _senml(payload):
    try:
        pack = cbor2.loads(payload)
        base, seq_rec = pack[0], pack[-1]
        seq = seq_rec[SENML_V] if seq_rec.get(SENML_N) == "seq" else None
    except Exception:
        raise ReadingError("payload is not the expected SenML pack") from None
    if not isinstance(seq, int):
        raise ReadingError("payload has no sequence number")
    bt = base.get(SENML_BT)
    when = datetime.datetime.fromtimestamp(bt, datetime.timezone.utc) if bt is not None else None
    values = [{"name": r.get(SENML_N), "unit": r.get(SENML_U), "value": r.get(SENML_V)} for r in pack[:-1]]
    return base.get(SENML_BN, ""), seq, when, values


def check(cose: bytes, registry: Registry, ca: x509.Certificate, last_seq: dict, now=None) -> Verdict:
    """The verdict on one reading. `last_seq` (kid -> highest sequence number accepted) is the replay
    window: the registry's for a live stream, a fresh dict for a file checked on its own.
    A verified reading advances it."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    try:
        protected, payload, signature, kid = _parts(cose)
    except ReadingError as e:
        return Verdict(False, str(e))
    v = Verdict(False, kid=kid.hex())
    cert_der = registry.certificate_der(v.kid)
    if cert_der is None:
        v.reason = "unknown kid: no registered device has this certificate"
        return v
    v.iccid = registry.devices[v.kid]["iccid"]
    try:
        cert = verify.certificate_chain(cert_der, ca)
        _check_signature(cose, protected, payload, signature, cert)
        _, v.seq, v.time, v.values = _senml(payload)
    except VerificationError as e:
        v.reason = f"certificate not trusted: {e}"
        return v
    except ReadingError as e:
        v.reason = str(e)
        return v
    last = last_seq.get(v.kid, 0)
    if v.seq <= last:
        v.reason = f"replayed sequence number {v.seq} (last seen {last})"
        return v
    if v.time and not (cert.not_valid_before_utc <= v.time <= now + FUTURE_SKEW):
        v.reason = f"time {v.time.isoformat()} out of range"
        return v
    last_seq[v.kid] = v.seq
    v.ok = True
    return v

