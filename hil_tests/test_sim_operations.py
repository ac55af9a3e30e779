"""The SIM's other operations through the firmware: objects, random, key refresh, on-card verification, raw APDUs."""

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from safebench.errors import RpcError
from safebench.rpc_codes import INVALID_PARAMS


def test_sim_info_lists_the_objects(device):
    info = device.call("sim.info")
    assert info["iccid"].startswith("89")
    assert "B7" in info["applet"]  # max sessions, from GET DATA application
    kinds = {(o["kind"], o["id"]) for o in info["objects"]}
    assert {("private_key", "01"), ("public_key", "01"), ("file", "02"), ("file", "03")} <= kinds


def test_random_is_random(device):
    a, b = (bytes.fromhex(device.call("sim.random", length=32)["random"]) for _ in range(2))
    assert len(a) == 32 and a != b
    with pytest.raises(RpcError) as e:
        device.call("sim.random", length=0)
    assert e.value.code == INVALID_PARAMS


def test_key_refresh_gives_a_new_working_key(device):
    """Generate Key Pair in the ephemeral container: a new public key, whose private half signs on the card."""
    first = device.call("sim.keygen", key="04")["public_key"]
    second = device.call("sim.keygen", key="04")["public_key"]
    assert first != second and len(bytes.fromhex(second)) == 65
    assert device.call("sim.read_pubkey", key="04")["public_key"] == second


def test_read_public_key_matches_the_certificate(device):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_der_x509_certificate(bytes.fromhex(device.call("sim.read_file", file="02")["data"]))
    point = cert.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert device.call("sim.read_pubkey", key="01")["public_key"] == point.hex().upper()


def test_on_card_verification(device):
    digest = hashlib.sha256(b"verify me").digest()
    sig = device.call("sim.sign", hash=digest.hex())["signature"]
    assert device.call("sim.verify", hash=digest.hex(), signature=sig, key="01")["valid"] is True
    bad = sig[:-2] + ("00" if sig[-2:] != "00" else "01")
    assert device.call("sim.verify", hash=digest.hex(), signature=bad, key="01")["valid"] is False


def test_card_hashes_the_full_text(device):
    from cryptography import x509

    cert = x509.load_der_x509_certificate(bytes.fromhex(device.call("sim.read_file", file="02")["data"]))
    message = bytes(range(256)) * 2  # 512 bytes: more than one Update block
    sig = bytes.fromhex(device.call("sim.sign", message=message.hex(), on_card_hash=True)["signature"])
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    cert.public_key().verify(der, hashlib.sha256(message).digest(), ec.ECDSA(Prehashed(hashes.SHA256())))


def test_raw_apdu_passthrough(device):
    res = device.call("sim.apdu", apdu="0084000008")  # GET RANDOM, 8 bytes, on the applet's channel
    assert res["sw"] == "9000" and len(bytes.fromhex(res["data"])) == 8
    res = device.call("sim.apdu", apdu="00EE000000")
    assert res["sw"] == "6D00"  # unknown instruction: the status word comes back, it is not an error
