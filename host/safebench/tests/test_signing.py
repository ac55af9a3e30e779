"""The host's check of `sim.sign` signatures: the firmware's context prefix, and nothing without it."""

import ast

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from safebench import FIRMWARE_DIR, signing
from safebench.errors import VerificationError
from safebench.pki import CertificateAuthority


def _firmware_context():
    """sim_rpc.CONTEXT, read from the firmware's source as data."""
    tree = ast.parse((FIRMWARE_DIR / "core" / "sim_rpc.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["CONTEXT"]:
            return ast.literal_eval(node.value)
    raise AssertionError("no CONTEXT in sim_rpc.py")


def test_the_host_applies_the_firmwares_context():
    assert signing.CONTEXT == _firmware_context()


@pytest.fixture(scope="module")
def device():
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return key, CertificateAuthority.create().issue_device(point, "8944000000000000001")


def _raw_sign(key, data):
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_a_sim_sign_signature_verifies_over_context_and_message(device):
    key, cert = device
    signing.check_signature(cert, b"m", _raw_sign(key, signing.CONTEXT + b"m"))


def test_a_signature_over_the_bare_message_does_not(device):
    key, cert = device
    with pytest.raises(VerificationError, match="bad signature"):
        signing.check_signature(cert, b"m", _raw_sign(key, b"m"))
