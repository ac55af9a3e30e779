"""Checking signed readings (COSE_Sign1 / ES256 over SenML-CBOR) against the device registry.

Only third-party code decides: cbor2 takes the message apart (keeping the exact bytes that were
signed), pycose verifies the signature, and cryptography checks it a second time on its own. Each
reading gets a verdict: verified, or the reason it is not.

A reading is accepted once in a stream. A device numbers its readings (epoch, seq): the epoch is when its count
started (network time), and a count started again after its flash was wiped has a later one. `check`
takes only readings after the last (epoch, seq) accepted from the device: for the live stream of
`read`, the registry's, which no wipe of a board resets; for a file given to `verify`, the file's own.
"""

import base64
import binascii
import codecs
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
from .errors import ReadingError, UnreadableFileError, VerificationError

COSE_SIGN1_TAG = 18
HDR_ALG, HDR_KID, ES256 = 1, 4, -7
SENML_BN, SENML_BT, SENML_N, SENML_U, SENML_V = -2, -3, 0, 1, 2
COUNT_NAMES = ("epoch", "seq", "dropped")  # the SenML records that number a reading (and the readings its
# board's outbox let go before it) rather than measure
FUTURE_SKEW = datetime.timedelta(minutes=5)
LINE_MAX = 64 * 1024  # a reading's line is a few hundred bytes


class Registry:
    """Known devices by kid (SHA-256 of the certificate): ICCID, certificate, and the last reading
    accepted from each as `epoch` and `last_seq`: the verifier's memory, which no wipe of a board resets."""

    def __init__(self, path):
        self.path = Path(path)
        self.devices = self._load()

    def _load(self):
        """The registry file's devices ({} before the first `provision`); a damaged one is one line."""
        try:
            devices = json.loads(self.path.read_text())
            if not all(isinstance(d, dict) and isinstance(d["certificate"], str) and isinstance(d["iccid"], str)
                       for d in devices.values()):
                raise TypeError("a device without its certificate or ICCID")
            return devices
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:  # ValueError: not JSON
            why = getattr(e, "strerror", None) or e
            raise UnreadableFileError(f"the device registry {self.path} is damaged ({why}): restore it, or remove "
                                      "it and register the devices again with `safebench provision`") from None

    def add(self, cert_der: bytes, iccid: str) -> str:
        """Register (again) the device with this certificate; what was accepted from it stays accepted."""
        import hashlib

        kid = hashlib.sha256(cert_der).hexdigest()
        device = self.devices.setdefault(kid, {})
        device.update(iccid=iccid, certificate=cert_der.hex())
        device.setdefault("epoch", 0)
        device.setdefault("last_seq", 0)
        return kid

    def accepted(self):
        """kid -> (epoch, seq) of the last reading accepted: `check`'s replay window; write back with `save`."""
        return _Accepted(self)

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


class _Accepted(dict):
    def __init__(self, registry):
        super().__init__({kid: (d.get("epoch", 0), d.get("last_seq", 0)) for kid, d in registry.devices.items()})
        self.registry = registry

    def __setitem__(self, kid, last):
        super().__setitem__(kid, last)
        device = self.registry.devices[kid]
        device["epoch"], device["last_seq"] = last


@dataclass
class Verdict:
    ok: bool
    reason: str = "verified"
    kid: str = ""
    iccid: str = ""
    epoch: int | None = None
    seq: int | None = None
    time: datetime.datetime | None = None
    values: list = field(default_factory=list)
    dropped: int = 0  # readings the board's outbox let go (full) since the last reading that said so

    def as_dict(self):
        return {"verified": self.ok, "reason": self.reason, "kid": self.kid, "iccid": self.iccid,
                "epoch": self.epoch, "seq": self.seq, "time": self.time.isoformat() if self.time else None,
                "values": self.values, "dropped": self.dropped}


def _parts(cose: bytes):
    try:
        msg = cbor2.loads(cose)
    except Exception as e:  # cbor2 raises several kinds on hostile input
        raise ReadingError(f"not CBOR ({e})") from None
    if not isinstance(msg, cbor2.CBORTag) or msg.tag != COSE_SIGN1_TAG or not isinstance(msg.value, list) \
            or len(msg.value) != 4:
        raise ReadingError("not a tagged COSE_Sign1 message")
    protected, unprotected, payload, signature = msg.value
    if not all(isinstance(x, bytes) for x in (protected, payload, signature)) or not isinstance(unprotected, dict):
        raise ReadingError("malformed COSE_Sign1 structure")
    try:
        header = cbor2.loads(protected)
    except Exception:
        raise ReadingError("malformed COSE header: the protected header is not CBOR") from None
    if header != {HDR_ALG: ES256}:
        raise ReadingError("malformed COSE header: the protected header is not {1: -7} (ES256)")
    kid = unprotected.get(HDR_KID)
    if not isinstance(kid, bytes):
        raise ReadingError("malformed COSE header: no kid in the unprotected header")
    if len(signature) != 64:
        raise ReadingError(f"signature is {len(signature)} bytes, not ES256's 64")
    return protected, payload, signature, kid


def _check_signature(cose, protected, payload, signature, cert):
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ReadingError("the device's certificate key is not an EC P-256 key (ES256)")
    numbers = key.public_numbers()
    try:
        msg = Sign1Message.decode(cose)
        msg.key = EC2Key(crv="P_256", x=numbers.x.to_bytes(32, "big"), y=numbers.y.to_bytes(32, "big"))
        valid = msg.verify_signature()
    except Exception as e:  # pycose refuses header values it cannot interpret, with its own kinds of error
        raise ReadingError(f"malformed COSE header ({e})") from None
    if not valid:
        raise ReadingError("bad signature (payload or signature tampered)")
    # Second opinion over the received bytes, independent of pycose.
    to_sign = cbor2.dumps(["Signature1", protected, b"", payload])
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        key.verify(der, to_sign, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ReadingError("bad signature (cryptography disagrees with pycose)") from None


def _is_count(x):
    return type(x) is int and x >= 0


def _plain(x):
    """A SenML name, unit or value as JSON can carry it."""
    return x if x is None or type(x) in (bool, int, float, str) else repr(x)


def _senml(payload):
    """(base name, epoch, seq, time, values) of the SenML pack."""
    try:
        pack = cbor2.loads(payload)
    except Exception:
        raise ReadingError("payload is not CBOR") from None
    if not isinstance(pack, list) or not pack or not all(isinstance(r, dict) for r in pack):
        raise ReadingError("payload is not the expected SenML pack")
    count = {r[SENML_N]: r.get(SENML_V) for r in pack if r.get(SENML_N) in COUNT_NAMES}
    if not _is_count(count.get("seq")):
        raise ReadingError("payload has no sequence number")
    if not _is_count(count.get("epoch")):
        raise ReadingError("payload has no epoch: made by firmware from before epochs; deploy the firmware again")
    if not _is_count(count.get("dropped", 0)):
        raise ReadingError("payload's count of dropped readings is not a count")
    base = pack[0]
    bt, when = base.get(SENML_BT), None
    if bt is not None:
        try:
            when = datetime.datetime.fromtimestamp(bt, datetime.timezone.utc)
        except (TypeError, ValueError, OverflowError, OSError):
            raise ReadingError(f"base time {_plain(bt)!r} is not a time") from None
    values = [{"name": _plain(r.get(SENML_N)), "unit": _plain(r.get(SENML_U)), "value": _plain(r.get(SENML_V))}
              for r in pack if r.get(SENML_N) not in COUNT_NAMES]
    return _plain(base.get(SENML_BN, "")), count["epoch"], count["seq"], when, values, count.get("dropped", 0)


def _not_newer(v, last):
    epoch, seq = last
    if v.epoch < epoch:
        return (f"seq {v.seq} of epoch {v.epoch} is older than the device's last accepted {epoch}/{seq}: "
                "a replay or a wiped board")
    return f"replay: seq {v.seq} of epoch {v.epoch} is not newer than the device's last accepted {epoch}/{seq}"


def check(cose: bytes, registry: Registry, ca: x509.Certificate, accepted: dict, now=None) -> Verdict:
    """The verdict on one reading. `accepted` (kid -> (epoch, seq) of the last reading accepted) is the
    replay window: the registry's (`Registry.accepted()`) for a live stream, a fresh dict for a file
    checked on its own. A verified reading advances it."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    try:
        protected, payload, signature, kid = _parts(cose)
    except ReadingError as e:
        return Verdict(False, str(e))
    v = Verdict(False, kid=kid.hex())
    cert_der = registry.certificate_der(v.kid)
    if cert_der is None:
        v.reason = (f"unknown device: no device in the registry {registry.path} has the certificate of kid "
                    f"{v.kid[:16]}...: run `safebench provision` to register its board")
        return v
    v.iccid = registry.devices[v.kid]["iccid"]
    try:
        cert = verify.certificate_chain(cert_der, ca)
        _check_signature(cose, protected, payload, signature, cert)
        _, v.epoch, v.seq, v.time, v.values, v.dropped = _senml(payload)
    except VerificationError as e:
        v.reason = f"{e}: give --ca the CA that issued the SIM's certificate"
        return v
    except ReadingError as e:
        v.reason = str(e)
        return v
    last = accepted.get(v.kid, (0, 0))
    if (v.epoch, v.seq) <= last:
        v.reason = _not_newer(v, last)
        return v
    if v.epoch > (now + FUTURE_SKEW).timestamp():
        v.reason = f"epoch {v.epoch} is in the future: the board's network clock was wrong when its count started"
        return v
    if v.time and not (cert.not_valid_before_utc <= v.time <= now + FUTURE_SKEW):
        v.reason = f"time {v.time.isoformat()} out of range"
        return v
    accepted[v.kid] = (v.epoch, v.seq)
    v.ok = True
    return v


def check_lines(stream, name, registry, ca, accepted, now=None):
    """(line number, verdict, bytes read so far) of each reading in `stream`, a buffered binary stream of
    base64 COSE, one per line (open(path, "rb"), sys.stdin.buffer). A line that holds no reading gets its
    own verdict, and the other lines are checked all the same."""
    if b"\0" in stream.peek(8192)[:8192]:
        raise UnreadableFileError(f"{name} is not a file of readings: it holds NUL bytes (binary data, or UTF-16 "
                                  "text), and readings are base64 COSE, one per line")
    for number, (line, done) in enumerate(_lines(stream), 1):
        if number == 1 and line is not None:
            line = line.removeprefix(codecs.BOM_UTF8)  # an editor's byte-order mark, no part of the reading
        if line is None:
            yield number, Verdict(False, f"line longer than {LINE_MAX} bytes: not a reading"), done
        elif line.strip():
            try:
                cose = base64.b64decode(line.strip(), validate=True)
            except binascii.Error as e:
                yield number, Verdict(False, f"not base64 ({e})"), done
                continue
            yield number, check(cose, registry, ca, accepted, now), done


def _lines(stream):
    """(line, bytes read so far) of each line; None for a line longer than LINE_MAX (read to its end)."""
    done = 0
    while line := stream.readline(LINE_MAX):
        done += len(line)
        if len(line) == LINE_MAX and not line.endswith(b"\n"):
            rest = line
            while rest and not rest.endswith(b"\n"):
                rest = stream.readline(LINE_MAX)
                done += len(rest)
            line = None
        yield line, done
