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
