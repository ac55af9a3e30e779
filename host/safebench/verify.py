"""Checks what a board signed, with third-party code only (cryptography), never with firmware code.

Every check raises VerificationError with the reason in plain words.
"""

import hashlib

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature
from cryptography.x509.verification import PolicyBuilder, Store
from cryptography.x509.verification import VerificationError as ChainError

from .errors import UntrustedCertificateError, VerificationError


def certificate_chain(cert_der: bytes, ca) -> x509.Certificate:
    """The device certificate, once it is shown to chain to `ca` (a CA certificate, or a list of them: the
    devices' CAs, e.g. the bench CA and the fleet CA) as a valid client certificate."""
    cas = _cas(ca)
    try:
        cert = x509.load_der_x509_certificate(cert_der)
    except ValueError as e:
        raise VerificationError(f"the SIM's certificate file is not a DER certificate ({e})") from None
    try:
        PolicyBuilder().store(Store(cas)).build_client_verifier().verify(cert, [])
    except ChainError as e:
        names = " or ".join(c.subject.rfc4514_string() for c in cas)
        raise UntrustedCertificateError(f"certificate not trusted by the CA {names}: {e}") from None
    return cert


def issuer_of(cert: x509.Certificate, ca) -> x509.Certificate:
    """Which of the CAs `ca` (as certificate_chain takes them) issued `cert`, a certificate it accepted."""
    return next(c for c in _cas(ca) if c.subject == cert.issuer)


def _cas(ca):
    return list(ca) if isinstance(ca, (list, tuple)) else [ca]


def raw_signature(cert: x509.Certificate, message: bytes, signature_rs: bytes, prehashed=False) -> None:
    """Check an ECDSA P-256 raw r||s signature over `message` (or its SHA-256 digest) with the cert's key."""
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise VerificationError("the certificate's key is not an EC P-256 key")
    if len(signature_rs) != 64:
        raise VerificationError(f"signature is {len(signature_rs)} bytes, not raw r||s of 64")
    der = encode_dss_signature(int.from_bytes(signature_rs[:32], "big"), int.from_bytes(signature_rs[32:], "big"))
    digest = message if prehashed else hashlib.sha256(message).digest()
    try:
        key.verify(der, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature:
        raise VerificationError("bad signature: it does not verify with the certificate's public key") from None
