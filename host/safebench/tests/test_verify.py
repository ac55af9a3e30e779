"""The host's checks reject every kind of bad evidence, with the reason in words."""

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from safebench import verify
from safebench.errors import VerificationError
from safebench.pki import CertificateAuthority


@pytest.fixture(scope="module")
def ca():
    return CertificateAuthority.create()


@pytest.fixture(scope="module")
def device_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def cert_der(ca, device_key):
    point = device_key.public_key().public_bytes(serialization.Encoding.X962,
                                                 serialization.PublicFormat.UncompressedPoint)
    return ca.issue_device(point, "8944000000000000001").public_bytes(serialization.Encoding.DER)


def _raw_sign(key, message):
    r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_good_signature(ca, device_key, cert_der):
    cert = verify.certificate_chain(cert_der, ca.cert)
    verify.raw_signature(cert, b"m", _raw_sign(device_key, b"m"))
    verify.raw_signature(cert, hashlib.sha256(b"m").digest(), _raw_sign(device_key, b"m"), prehashed=True)


def test_tampered_message(ca, device_key, cert_der):
    cert = verify.certificate_chain(cert_der, ca.cert)
    with pytest.raises(VerificationError, match="bad signature"):
        verify.raw_signature(cert, b"n", _raw_sign(device_key, b"m"))


def test_flipped_signature_bit(ca, device_key, cert_der):
    cert = verify.certificate_chain(cert_der, ca.cert)
    sig = bytearray(_raw_sign(device_key, b"m"))
    sig[10] ^= 1
    with pytest.raises(VerificationError, match="bad signature"):
        verify.raw_signature(cert, b"m", bytes(sig))


def test_signature_wrong_length(ca, device_key, cert_der):
    cert = verify.certificate_chain(cert_der, ca.cert)
    with pytest.raises(VerificationError, match="not raw r"):
        verify.raw_signature(cert, b"m", _raw_sign(device_key, b"m")[:63])


def test_other_ca_is_not_trusted(cert_der):
    with pytest.raises(VerificationError, match="not trusted"):
        verify.certificate_chain(cert_der, CertificateAuthority.create("another CA").cert)


def test_garbage_certificate(ca):
    with pytest.raises(VerificationError, match="not a DER certificate"):
        verify.certificate_chain(b"\x30\x03\x02\x01\x01", ca.cert)


def test_ca_round_trip(tmp_path, ca):
    ca.save(tmp_path)
    assert (tmp_path / "ca.key").stat().st_mode & 0o077 == 0
    again = CertificateAuthority.load_or_create(tmp_path)
    assert again.cert == ca.cert


# ---- readings: each counts once, numbered (epoch, seq) across wiped boards ----------------------

E1, E2 = 1764061500, 1764069000  # two counts of one device: before and after its flash was wiped


def _check(device, cose, accepted=None):
    from safebench.readings import check

    return check(cose, device.registry, device.ca.cert, device.registry.accepted() if accepted is None else accepted)


def test_a_wiped_board_never_makes_old_readings_valid_again(reading_device):
    accepted = reading_device.registry.accepted()
    before_wipe = [reading_device.reading(E1, seq) for seq in (1, 2, 3)]
    assert all(_check(reading_device, cose, accepted).ok for cose in before_wipe)
    after_wipe = reading_device.reading(E2, 1)
    assert _check(reading_device, after_wipe, accepted).ok  # seq 1 again, of a later epoch: new
    old = _check(reading_device, before_wipe[2], accepted)
    assert not old.ok and old.reason == (f"seq 3 of epoch {E1} is older than the device's last accepted {E2}/1: "
                                         "a replay or a wiped board")
    again = _check(reading_device, after_wipe, accepted)
    assert not again.ok and again.reason.startswith(f"replay: seq 1 of epoch {E2} is not newer")


def test_what_was_accepted_is_remembered_by_the_registry(reading_device, tmp_path):
    from safebench.database import open_database
    from safebench.registry import Registry

    accepted = reading_device.registry.accepted()
    assert _check(reading_device, reading_device.reading(E1, 5), accepted).ok
    reading_device.registry.save()
    registry = Registry(open_database(reading_device.registry.where))  # a later run
    cert_der = registry.certificate_der(reading_device.kid.hex())
    registry.add(cert_der, reading_device.ICCID)  # `safebench provision` again, e.g. after the wipe
    assert registry.accepted() == {reading_device.kid.hex(): (E1, 5)}
    reading_device.registry = registry
    assert not _check(reading_device, reading_device.reading(E1, 4)).ok
    assert _check(reading_device, reading_device.reading(E2, 1)).ok


def test_a_count_started_in_the_future_is_rejected(reading_device):
    import time

    future = int(time.time()) + 3600
    verdict = _check(reading_device, reading_device.reading(future, 1))
    assert not verdict.ok and "in the future" in verdict.reason and "network clock" in verdict.reason


def test_a_reading_without_an_epoch_is_rejected(reading_device):
    import cbor2

    cose = cbor2.loads(reading_device.reading(E1, 1))
    pack = cbor2.loads(cose.value[2])
    del pack[1]  # firmware from before epochs
    protected, payload = cose.value[0], cbor2.dumps(pack)
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(reading_device.key.sign(cbor2.dumps(["Signature1", protected, b"", payload]),
                                                        ec.ECDSA(hashes.SHA256())))
    cose.value[2], cose.value[3] = payload, r.to_bytes(32, "big") + s.to_bytes(32, "big")
    verdict = _check(reading_device, cbor2.dumps(cose))
    assert not verdict.ok and "no epoch" in verdict.reason


@pytest.mark.parametrize("protected, unprotected, reason", [
    (b"\xa1\x01", None, "protected header is not CBOR"),  # cut short
    (b"\xa1\x01\x27", None, "not {1: -7}"),
    (b"\xa1\x01\x26", {}, "no kid"),
    (b"\xa1\x01\x26", "kid", "malformed COSE_Sign1 structure"),
    (b"\xa1\x01\x26", {3: {"a": 1}}, "malformed COSE header"),  # pycose refuses this content type
    (b"\xa1\x01\x26", {-1: 1.5}, "malformed COSE header"),
])
def test_a_malformed_header_is_a_verdict(reading_device, protected, unprotected, reason):
    if isinstance(unprotected, dict) and unprotected:
        unprotected = {4: reading_device.kid, **unprotected}
    verdict = _check(reading_device, reading_device.reading(E1, 1, protected=protected, unprotected=unprotected))
    assert not verdict.ok and reason in verdict.reason


def test_rejections_say_which_ca_and_registry_and_what_to_do(reading_device, tmp_path):
    from safebench.readings import check
    from safebench.registry import Registry

    other = CertificateAuthority.create("another CA").cert
    verdict = check(reading_device.reading(E1, 1), reading_device.registry, other, {})
    assert "not trusted by the CA CN=another CA" in verdict.reason and "give --ca" in verdict.reason
    empty = Registry.of_state(tmp_path / "empty")
    verdict = check(reading_device.reading(E1, 1), empty, reading_device.ca.cert, {})
    assert empty.where in verdict.reason and "run `safebench provision`" in verdict.reason


def test_each_line_of_a_file_gets_its_own_verdict(reading_device):
    import base64
    import io

    from safebench.readings import LINE_MAX, check_lines

    def b64(cose):
        return base64.b64encode(cose)

    lines = [b"\xef\xbb\xbf" + b64(reading_device.reading(E1, 1)),  # a byte-order mark before the first
             b"", b"not base64!", b"A" * (LINE_MAX + 10), b64(b"\xa1\x01\x26"),
             b64(reading_device.reading(E1, 2)) + b"\r", b64(reading_device.reading(E1, 2))]
    stream = io.BufferedReader(io.BytesIO(b"\n".join(lines) + b"\n"))
    got = [(n, v.ok, v.reason) for n, v, _ in check_lines(stream, "r.txt", reading_device.registry,
                                                         reading_device.ca.cert, reading_device.registry.accepted())]
    assert [(n, ok) for n, ok, _ in got] == [(1, True), (3, False), (4, False), (5, False), (6, True), (7, False)]
    assert "not base64" in got[1][2] and "longer than" in got[2][2] and "not a tagged COSE_Sign1" in got[3][2]
    assert got[5][2].startswith("replay: seq 2")


def test_a_binary_file_is_one_error(reading_device):
    import io

    from safebench.errors import UnreadableFileError
    from safebench.readings import check_lines

    stream = io.BufferedReader(io.BytesIO(bytes(range(256)) * 4))
    with pytest.raises(UnreadableFileError, match="bin.dat is not a file of readings"):
        list(check_lines(stream, "bin.dat", reading_device.registry, reading_device.ca.cert, {}))
