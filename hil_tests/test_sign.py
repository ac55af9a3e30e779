"""Signatures made by the board's SIM, checked on the host with cryptography alone."""

import hashlib
from binascii import unhexlify

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from safebench import verify
from safebench.errors import VerificationError
from safebench.signing import sign_and_verify


def test_sign_message_round_trip(device, ca_cert):
    ev = sign_and_verify(device, b"reading 42", ca_cert)
    assert ev["verified"]
    assert len(unhexlify(ev["signature"])) == 64
    assert ev["iccid"] in ev["subject"]


def test_signature_is_made_with_the_certificate_key(device, ca_cert):
    cert = verify.certificate_chain(unhexlify(device.call("sim.read_file", file="02")["data"]), ca_cert)
    sig = unhexlify(device.call("sim.sign", message=b"abc".hex())["signature"])
    verify.raw_signature(cert, b"abc", sig)
    with pytest.raises(VerificationError, match="bad signature"):
        verify.raw_signature(cert, b"abd", sig)


def test_sign_precomputed_hash(device, ca_cert):
    digest = hashlib.sha256(b"precomputed").digest()
    res = device.call("sim.sign", hash=digest.hex())
    assert res["hash"] == digest.hex().upper()
    cert = x509.load_der_x509_certificate(unhexlify(device.call("sim.read_file", file="02")["data"]))
    verify.raw_signature(cert, digest, unhexlify(res["signature"]), prehashed=True)


def test_signatures_differ_each_time(device):
    # ECDSA draws a fresh nonce per signature; identical output would mean a fixed or replayed answer.
    a = device.call("sim.sign", message="00")["signature"]
    b = device.call("sim.sign", message="00")["signature"]
    assert a != b


def test_certificate_key_is_p256(device, ca_cert):
    cert = verify.certificate_chain(unhexlify(device.call("sim.read_file", file="02")["data"]), ca_cert)
    assert isinstance(cert.public_key().curve, ec.SECP256R1)
