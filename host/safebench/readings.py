"""Checking signed readings (COSE_Sign1 / ES256 over SenML-CBOR) against the device registry.

Only third-party code decides: cbor2 takes the message apart (keeping the exact bytes that were
signed), pycose verifies the signature, and cryptography checks it a second time on its own. Each
reading gets a verdict: verified, or a code (MALFORMED, UNKNOWN_KEY, ...) and the reason in words.
`check` is that reference; `Verifier` (the ingest's) gives the same verdicts faster: it checks a
certificate's chain once, not for every reading, and the signature once, with cryptography only.

A reading is accepted once in a stream. A device numbers its readings (epoch, seq): the epoch is when its count
started (network time), and a count started again after its flash was wiped has a later one. `check`
takes only readings after the last (epoch, seq) accepted from the device: for the live stream of
`read`, the registry's, which no wipe of a board resets; for a file given to `verify`, the file's own.
"""

import base64
import binascii
import codecs
import dataclasses
import datetime
from dataclasses import dataclass, field

import cbor2
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
SENML_BN, SENML_BT, SENML_N, SENML_U, SENML_V, SENML_VS = -2, -3, 0, 1, 2, 3
COUNT_NAMES = ("epoch", "seq", "dropped")  # the SenML records that number a reading (and the readings its
# board's outbox let go before it) rather than measure
BOARD_NAME = "board"  # the SenML record naming the board the reading was taken on (its unique ID, hex)
FUTURE_SKEW = datetime.timedelta(minutes=5)
LINE_MAX = 64 * 1024  # a reading's line is a few hundred bytes
# A verdict's code: what the ingest stores and the dashboard shows, beside the reason in words.
VERIFIED, MALFORMED, BAD_SIGNATURE, UNKNOWN_KEY, UNTRUSTED, REVOKED, REPLAYED, STALE, MOVED_SIM = (
    "verified", "malformed", "bad-signature", "unknown-key", "untrusted", "revoked", "replayed", "stale",
    "moved-sim")


@dataclass
class Verdict:
    ok: bool
    reason: str = "verified"
    code: str = MALFORMED  # VERIFIED when ok
    kid: str = ""
    iccid: str = ""
    epoch: int | None = None
    seq: int | None = None
    time: datetime.datetime | None = None
    values: list = field(default_factory=list)
    dropped: int = 0  # readings the board's outbox let go (full) since the last reading that said so
    board: str = ""  # the unique ID (hex) of the board that took it, as the reading says

    def replayed(self, reason):
        """This verdict, rejected as a replay."""
        return dataclasses.replace(self, ok=False, code=REPLAYED, reason=reason)

    def as_dict(self):
        return {"verified": self.ok, "verdict": self.code, "reason": self.reason, "kid": self.kid, "iccid": self.iccid,
                "epoch": self.epoch, "seq": self.seq, "time": self.time.isoformat() if self.time else None,
                "values": self.values, "dropped": self.dropped, "board": self.board}


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
        raise ReadingError("bad signature (payload or signature tampered)", BAD_SIGNATURE)
    # Second opinion over the received bytes, independent of pycose.
    if not _signed(key, protected, payload, signature):
        raise ReadingError("bad signature (cryptography disagrees with pycose)", BAD_SIGNATURE)


def _signed(key, protected, payload, signature):
    """Whether `signature` (raw r||s) is the ES256 signature of the COSE Sig_structure, by cryptography."""
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        key.verify(der, _to_be_signed(protected, payload), _ES256)
        return True
    except InvalidSignature:
        return False


_ES256 = ec.ECDSA(hashes.SHA256())


def _to_be_signed(protected, payload):
    """The CBOR of the Sig_structure ["Signature1", protected, b"", payload] (RFC 9052 §4.4), written out:
    cheaper than cbor2.dumps on the fast path. pycose encodes it on its own in `check`."""
    return b"".join((b"\x84\x6aSignature1", _bstr_head(len(protected)), protected, b"\x40", _bstr_head(len(payload)),
                     payload))


def _bstr_head(n):
    if n < 24:
        return bytes((0x40 | n,))
    for head, size in ((0x58, 1), (0x59, 2), (0x5A, 4), (0x5B, 8)):
        if n < 1 << (8 * size):
            return bytes((head,)) + n.to_bytes(size, "big")


def _is_count(x):
    return type(x) is int and x >= 0


def _plain(x):
    """A SenML name, unit or value as JSON can carry it."""
    return x if x is None or type(x) in (bool, int, float, str) else repr(x)


def _senml(payload):
    """(base name, epoch, seq, time, values, dropped, board) of the SenML pack."""
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
    boards = [r.get(SENML_VS) for r in pack if r.get(SENML_N) == BOARD_NAME]
    if len(boards) > 1 or not all(isinstance(b, str) and b and all(c in "0123456789ABCDEF" for c in b)
                                  for b in boards):
        raise ReadingError("payload's board ID is not one upper-case hex string")
    base = pack[0]
    bt, when = base.get(SENML_BT), None
    if bt is not None:
        try:
            when = datetime.datetime.fromtimestamp(bt, datetime.timezone.utc)
        except (TypeError, ValueError, OverflowError, OSError):
            raise ReadingError(f"base time {_plain(bt)!r} is not a time") from None
    values = [{"name": _plain(r.get(SENML_N)), "unit": _plain(r.get(SENML_U)), "value": _plain(r.get(SENML_V))}
              for r in pack if r.get(SENML_N) not in COUNT_NAMES and r.get(SENML_N) != BOARD_NAME]
    return (_plain(base.get(SENML_BN, "")), count["epoch"], count["seq"], when, values, count.get("dropped", 0),
            boards[0] if boards else "")


def _not_newer(v, last):
    epoch, seq = last
    if v.epoch < epoch:
        return (f"seq {v.seq} of epoch {v.epoch} is older than the device's last accepted {epoch}/{seq}: "
                "a replay or a wiped board")
    return f"replay: seq {v.seq} of epoch {v.epoch} is not newer than the device's last accepted {epoch}/{seq}"


def check(cose: bytes, registry, ca, accepted: dict | None, now=None) -> Verdict:
    """The verdict on one reading, by the reference path: the certificate's chain and pycose's verification
    for every reading, then cryptography's second opinion. `accepted` (kid -> (epoch, seq) of the last reading
    accepted) is the replay window: the registry's (`Registry.accepted()`) for a live stream, a fresh dict
    for a file checked on its own, None where a database decides (`Database.store_readings`). A verified
    reading advances it."""
    return _verdict(cose, registry, ca, accepted, now, _reference_key, _check_signature)


class Verifier:
    """`check`'s verdicts, faster, for a stream of many readings (the ingest): a certificate's chain is checked
    once (again once past its or the CA's validity), its key kept, and each signature verified once, by
    cryptography; pycose's check of the same signature is left out. The tests show on a corpus of good and bad
    readings that the verdicts are `check`'s."""

    def __init__(self, registry, ca):
        self.registry, self.ca = registry, ca
        self._chains = {}  # certificate DER -> (certificate, valid until): checked against the CA

    def check(self, cose: bytes, accepted: dict | None = None, now=None) -> Verdict:
        return _verdict(cose, self.registry, self.ca, accepted, now, self._chained, self._signature)

    def _chained(self, cert_der, ca):
        known = self._chains.get(cert_der)
        if known and datetime.datetime.now(datetime.timezone.utc) < known[1]:
            return known[0]
        cert = verify.certificate_chain(cert_der, ca)  # raises for a certificate that does not chain: not kept
        issuer = verify.issuer_of(cert, ca)
        self._chains[cert_der] = (cert, min(cert.not_valid_after_utc, issuer.not_valid_after_utc))
        return cert

    @staticmethod
    def _signature(cose, protected, payload, signature, cert):
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise ReadingError("the device's certificate key is not an EC P-256 key (ES256)")
        if not _signed(key, protected, payload, signature):
            raise ReadingError("bad signature (payload or signature tampered)", BAD_SIGNATURE)


def _reference_key(cert_der, ca):
    return verify.certificate_chain(cert_der, ca)


def _verdict(cose, registry, ca, accepted, now, chained, signed) -> Verdict:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    try:
        protected, payload, signature, kid = _parts(cose)
    except ReadingError as e:
        return Verdict(False, str(e))
    v = Verdict(False, kid=kid.hex())
    device = registry.device(v.kid)
    if device is None:
        v.code, v.reason = UNKNOWN_KEY, (f"unknown device: no device in the registry {registry.where} has the "
                                         f"certificate of kid {v.kid[:16]}...: run `safebench provision` to "
                                         "register its board")
        return v
    v.iccid = device["iccid"]
    if device.get("revoked_at") is not None:
        when = datetime.datetime.fromtimestamp(device["revoked_at"], datetime.timezone.utc)
        v.code, v.reason = REVOKED, f"revoked: the device's certificate was revoked at {when.isoformat()}"
        return v
    try:
        cert = chained(bytes.fromhex(device["certificate"]), ca)
        signed(cose, protected, payload, signature, cert)
        _, v.epoch, v.seq, v.time, v.values, v.dropped, v.board = _senml(payload)
    except VerificationError as e:
        v.code, v.reason = UNTRUSTED, f"{e}: give --ca the CA that issued the SIM's certificate"
        return v
    except ReadingError as e:
        v.code, v.reason = e.verdict, str(e)
        return v
    bound = device.get("board_id")
    if bound and v.board != bound:
        v.code, v.reason = MOVED_SIM, (f"moved SIM: the SIM of this identity belongs to board {bound}, and this "
                                       f"reading was taken on {'board ' + v.board if v.board else 'a board it does not name'}"
                                       ": `safebench bind` there if the move was yours")
        return v
    if not bound and v.board and registry.bound_to(v.board):
        others = registry.bound_to(v.board)
        v.code, v.reason = MOVED_SIM, (f"another SIM in board {v.board}: it is bound to the SIM of kid "
                                       f"{min(others)[:16]}..., and this reading is signed by kid {v.kid[:16]}..., "
                                       "bound to no board: `safebench bind` there if the SIM is yours")
        return v
    last = accepted.get(v.kid, (0, 0)) if accepted is not None else (0, 0)
    if (v.epoch, v.seq) <= last:
        v.code, v.reason = REPLAYED, _not_newer(v, last)
        return v
    if v.epoch > (now + FUTURE_SKEW).timestamp():
        v.code, v.reason = STALE, f"epoch {v.epoch} is in the future: the board's network clock was wrong when its count started"
        return v
    if v.time and not (cert.not_valid_before_utc <= v.time <= now + FUTURE_SKEW):
        v.code, v.reason = STALE, f"time {v.time.isoformat()} out of range"
        return v
    if accepted is not None:
        accepted[v.kid] = (v.epoch, v.seq)
    v.ok, v.code = True, VERIFIED
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
