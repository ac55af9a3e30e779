"""The ingest's verification rate on one core, beside OpenSSL's P-256 verify rate on the same machine.

The corpus is readings signed as the firmware signs them (`safebench.testing.signed_readings`, software keys:
the rate is the host's, no board is needed) by DEVICES registered devices. Measured in this process, one
thread: OpenSSL (`openssl speed ecdsap256`, its verify/s), cryptography's bare ECDSA verify of one
Sig_structure, the ingest's `readings.Verifier`, the reference `readings.check`, and the Verifier with its
verdicts stored in SQLite in the ingest's batches. Where a reading's time goes: each stage of the two
paths timed alone. Same verdicts: both paths are run on the corpus and on its bad twins (a flipped byte,
a replay, an unknown signer) and must agree on every one; the property-based test
(host/safebench/tests/test_readings_verifier.py) does the same on drawn corpora.
"""

import datetime
import re
import subprocess
import tempfile
import time
from pathlib import Path

from safebench import readings, verify
from safebench.database import open_database
from safebench.pki import CertificateAuthority
from safebench.registry import Registry
from safebench.testing.signed_readings import ReadingDevice

DEVICES, PER_DEVICE = 8, 50
EPOCH = 1_700_000_000
BATCH = 256  # the ingest's batch (ingest.worker)
GOAL_RATIO = 0.5  # of OpenSSL's verify/s


def openssl_verify_rate(seconds=2):
    """P-256 verifications per second by `openssl speed`, one process; None when OpenSSL is not there."""
    try:
        out = subprocess.run(["openssl", "speed", "-seconds", str(seconds), "ecdsap256"], capture_output=True,
                             text=True, timeout=60 + 4 * seconds).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+\S+\s+([\d.]+)", out)
    return float(m.group(1)) if m else None


def _rate(fn, items, seconds):
    """Calls of fn(item) per second over `items`, repeated for at least `seconds`."""
    count, t0 = 0, time.perf_counter()
    while True:
        for item in items:
            fn(item)
        count += len(items)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return round(count / elapsed)


def _us(fn, items, seconds):
    rate = _rate(fn, items, seconds)
    return round(1e6 / rate, 1)


def measure(seconds=2.0, per_device=PER_DEVICE):
    """The rates, stages and verdict check, each rate over at least `seconds` (the reference path's half)."""
    with tempfile.TemporaryDirectory(prefix="safebench-ingest-rate-") as tmp:
        ca = CertificateAuthority.create()
        registry = Registry(open_database(Path(tmp) / "registry.db"))
        try:
            return _measure(seconds, per_device, ca, registry, Path(tmp))
        finally:
            registry.close()


def _measure(seconds, per_device, ca, registry, tmp):
    now = datetime.datetime.fromtimestamp(EPOCH + 3600, datetime.timezone.utc)
    devices = [ReadingDevice(ca, registry, f"89440000000000{i:05d}") for i in range(DEVICES)]
    corpus = [d.reading(EPOCH, seq) for seq in range(1, per_device + 1) for d in devices]
    verifier = readings.Verifier(registry, ca.cert)

    def fast(cose):
        verdict = verifier.check(cose, None, now)
        assert verdict.ok, verdict.reason

    def reference(cose):
        verdict = readings.check(cose, registry, ca.cert, None, now)
        assert verdict.ok, verdict.reason

    rates = {"openssl": openssl_verify_rate(max(1, round(seconds)))}
    parts = [readings._parts(c) for c in corpus]
    keys = {d.kid.hex(): verify.certificate_chain(d.cert_der, ca.cert) for d in devices}
    signed = [(keys[kid.hex()].public_key(), p, pl, s) for (p, pl, s, kid) in parts]
    rates["cryptography"] = _rate(lambda a: readings._signed(*a), signed, seconds)
    rates["verifier"] = _rate(fast, corpus, seconds)
    rates["reference"] = _rate(reference, corpus, seconds / 2)
    rates["stored"] = _stored_rate(verifier, corpus, tmp, now)
    stages = {  # µs per reading of each stage, alone
        "decode COSE and SenML (cbor2)": _us(lambda c: readings._senml(readings._parts(c)[1]), corpus, seconds / 4),
        "registry lookup": _us(lambda p: registry.device(p[3].hex()), parts, seconds / 4),
        "certificate chain, cached (Verifier)": _us(lambda d: verifier._chained(d.cert_der, ca.cert), devices,
                                                    seconds / 4),
        "certificate chain, checked (check)": _us(lambda d: verify.certificate_chain(d.cert_der, ca.cert), devices,
                                                  seconds / 4),
        "ECDSA verify, cryptography (both)": round(1e6 / rates["cryptography"], 1),
        "pycose verify + cryptography's (check)": _us(
            lambda i: readings._check_signature(corpus[i], *parts[i][:3], keys[parts[i][3].hex()]),
            range(len(corpus)), seconds / 4),
    }
    ratio = round(rates["verifier"] / rates["openssl"], 2) if rates["openssl"] else None
    return {"devices": DEVICES, "readings": len(corpus), "per_second": rates, "stage_us": stages,
            "ratio": ratio, "goal_ratio": GOAL_RATIO, "same_verdicts": _same_verdicts(corpus, devices, registry,
                                                                                   ca, now)}


def _stored_rate(verifier, corpus, tmp, now):
    """Readings verified and stored per second, in the ingest's batches, into a new SQLite database."""
    db = open_database(tmp / "readings.db")
    try:
        t0 = time.perf_counter()
        for i in range(0, len(corpus), BATCH):
            batch = corpus[i:i + BATCH]
            db.store_readings([("bench", c, verifier.check(c, None, now)) for c in batch])
        return round(len(corpus) / (time.perf_counter() - t0))
    finally:
        db.close()


def _same_verdicts(corpus, devices, registry, ca, now):
    """Verdicts of both paths, on the corpus and its bad twins, in stream order (replays included)."""
    stranger = ReadingDevice(ca, None, "8944999999999999999")
    bad = [c[:-5] + bytes([c[-5] ^ 1]) + c[-4:] for c in corpus[::7]]
    stream = corpus + bad + corpus[::11] + [stranger.reading(EPOCH, 1)]
    verifier, fast, ref = readings.Verifier(registry, ca.cert), {}, {}
    codes = {}
    for cose in stream:
        a, b = verifier.check(cose, fast, now), readings.check(cose, registry, ca.cert, ref, now)
        if a.as_dict() != b.as_dict():
            return {"agree": False, "readings": len(stream), "first_disagreement": [a.reason, b.reason]}
        codes[a.code] = codes.get(a.code, 0) + 1
    return {"agree": True, "readings": len(stream), "verdicts": codes}
