"""The ingest's fast path (`readings.Verifier`) gives exactly the verdicts of the reference path
(`readings.check`: pycose and cryptography, the chain checked every time), on a corpus hypothesis draws of
good and bad readings: tampered bytes, unknown, revoked and untrusted signers, replays, clocks out of range."""

import datetime

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safebench.database import open_database
from safebench.pki import CertificateAuthority
from safebench.readings import Verifier, check
from safebench.registry import Registry
from safebench.testing.signed_readings import ReadingDevice

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)
EPOCH = int(NOW.timestamp()) - 3600


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Signers of every standing: registered, another's certificate, revoked, unregistered, from another CA."""
    ca, other_ca = CertificateAuthority.create(), CertificateAuthority.create()
    registry = Registry(open_database(tmp_path_factory.mktemp("verifier") / "registry.db"))
    signers = {"registered": ReadingDevice(ca, registry, "8944000000000000001"),
               "second": ReadingDevice(ca, registry, "8944000000000000002"),
               "revoked": ReadingDevice(ca, registry, "8944000000000000003"),
               "unregistered": ReadingDevice(ca, None, "8944000000000000004"),
               "other-ca": ReadingDevice(other_ca, registry, "8944000000000000005")}
    registry.revoke(signers["revoked"].kid.hex())
    yield ca, registry, signers
    registry.close()


def _mutated(cose, how, where, byte):
    if how == "flip":
        i = where % len(cose)
        return cose[:i] + bytes([cose[i] ^ (byte or 1)]) + cose[i + 1:]
    if how == "truncate":
        return cose[:where % len(cose)]
    if how == "append":
        return cose + bytes([byte])
    if how == "kid of another":
        msg = cbor2.loads(cose)
        msg.value[1] = {4: bytes(32) if byte % 2 else b"kid"}
        return cbor2.dumps(msg)
    return cose


readings = st.lists(st.tuples(
    st.sampled_from(["registered", "registered", "second", "revoked", "unregistered", "other-ca"]),
    st.integers(0, 3).map(lambda d: EPOCH + d * 1000 if d < 3 else int(NOW.timestamp()) + 86400),  # epoch
    st.integers(0, 6),  # seq: small, so that replays come up
    st.sampled_from([None, "now", "before the certificate", "tomorrow"]),  # base time
    st.sampled_from(["none", "none", "none", "flip", "truncate", "append", "kid of another", "protected"]),
    st.integers(0, 400), st.integers(0, 255)), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(readings)
def test_the_fast_path_gives_the_reference_verdicts(world, corpus):
    ca, registry, signers = world
    times = {None: None, "now": NOW.timestamp() - 60, "before the certificate": 1_000_000_000,
             "tomorrow": NOW.timestamp() + 86400}
    verifier = Verifier(registry, ca.cert)
    fast, reference = {}, {}  # each path its own replay window
    for signer, epoch, seq, when, how, where, byte in corpus:
        device = signers[signer]
        protected = b"\xa1\x01\x27" if how == "protected" else device.ES256  # EdDSA's alg: not ES256
        cose = _mutated(device.reading(epoch, seq, time=times[when], protected=protected), how, where, byte)
        expected = check(cose, registry, ca.cert, reference, NOW)
        assert verifier.check(cose, fast, NOW).as_dict() == expected.as_dict(), (signer, how)
    assert fast == reference


def test_the_corpus_reaches_every_verdict(world):
    """The strategy above can fail: each verdict it compares is one the corpus does produce."""
    ca, registry, signers = world
    good = signers["registered"]
    cases = {"verified": good.reading(EPOCH, 1), "bad-signature": _mutated(good.reading(EPOCH, 1), "flip", -5, 1),
             "malformed": good.reading(EPOCH, 1, protected=b"\xa1\x01\x27"),
             "unknown-key": signers["unregistered"].reading(EPOCH, 1),
             "revoked": signers["revoked"].reading(EPOCH, 1), "untrusted": signers["other-ca"].reading(EPOCH, 1),
             "stale": good.reading(int(NOW.timestamp()) + 86400, 1)}
    accepted = {good.kid.hex(): (EPOCH, 0)}
    got = {code: Verifier(registry, ca.cert).check(cose, dict(accepted), NOW).code for code, cose in cases.items()}
    assert got == {code: code for code in cases}
    replay = Verifier(registry, ca.cert).check(good.reading(EPOCH, 1), {good.kid.hex(): (EPOCH, 1)}, NOW)
    assert replay.code == "replayed"
