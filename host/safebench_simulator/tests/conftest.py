"""The IoT SAFE applet tests' shared pieces: a fresh card and its applet, and the helpers they call.

A helper comes as a fixture that returns the function (test modules cannot import each other).
"""

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from safebench_simulator.card import Card
from safebench_simulator.iotsafe import IoTSafeApplet


@pytest.fixture
def card():
    return Card.new()


@pytest.fixture
def applet(card):
    return IoTSafeApplet(card)


@pytest.fixture(scope="session")
def run():
    """``run(applet, cla, ins, p1, p2, data_hex="", le=None)`` sends one command; returns (data, sw)."""

    def run(applet, cla, ins, p1, p2, data="", le=None):
        return applet.process(cla, ins, p1, p2, bytes.fromhex(data.replace(" ", "")), le)

    return run


@pytest.fixture(scope="session")
def private_material():
    """``private_material(card)``: every private scalar and secret value the card holds (test-only look
    inside the image)."""

    def private_material(card):
        kinds = ("private_key", "secret_key")
        return [c.value for kind in kinds for c in card._containers[kind].values() if c.value]

    return private_material


@pytest.fixture(scope="session")
def verify():
    """``verify(public_point, response, message=None, digest=None, algorithm=None)`` checks a ``33 40 r||s``
    (or ``33 00 40 r||s``) response with cryptography (SHA-256 by default)."""

    def verify(public_point, response, message=None, digest=None, algorithm=None):
        algorithm = algorithm or hashes.SHA256()
        one_byte_length = (response[:2], len(response)) == (b"\x33\x40", 66)
        assert one_byte_length or (response[:3], len(response)) == (b"\x33\x00\x40", 67)
        raw = response[-64:]
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_point)
        if digest is None:
            key.verify(der, message, ec.ECDSA(algorithm))
        else:
            key.verify(der, digest, ec.ECDSA(Prehashed(algorithm)))

    return verify
