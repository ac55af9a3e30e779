"""The SIM's other operations through the firmware: objects, roles, random, key refresh, on-card verification,
raw APDUs. Containers are the ones the firmware found on the card (sim.roles), whatever the SIM's layout."""

import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from safebench.errors import RpcError
from safebench.rpc_codes import E_CARD, E_NO_ROLE, INVALID_PARAMS
from safebench.signing import CONTEXT


@pytest.fixture
def roles(device):
    return device.call("sim.roles")["roles"]


def _certificate(device):
    return x509.load_der_x509_certificate(bytes.fromhex(device.call("sim.read_file")["data"]))


def test_sim_info_lists_the_objects(device, roles):
    info = device.call("sim.info")
    assert info["iccid"].startswith("89")
    assert "B7" in info["applet"]  # max sessions, from GET DATA application
    kinds = {(o["kind"], o["id"]) for o in info["objects"]}
    assert {("private_key", roles["signing_key"]), ("public_key", roles["signing_public_key"]),
            ("file", roles["client_cert"])} <= kinds


def test_random_is_random(device):
    a, b = (bytes.fromhex(device.call("sim.random", length=32)["random"]) for _ in range(2))
    assert len(a) == 32 and a != b
    with pytest.raises(RpcError) as e:
        device.call("sim.random", length=0)
    assert e.value.code == INVALID_PARAMS


def test_key_refresh_gives_a_new_working_key(device, roles):
    """Generate Key Pair in the ephemeral container (sim.keygen's default): a new public key each time."""
    if roles["ephemeral_key"] is None:
        pytest.skip("this SIM has no ephemeral key pair")
    first = device.call("sim.keygen")
    second = device.call("sim.keygen")
    assert first["key"] == roles["ephemeral_key"]
    assert first["public_key"] != second["public_key"] and len(bytes.fromhex(second["public_key"])) == 65
    objects = device.call("sim.info")["objects"]
    label = next(o["label"] for o in objects if o["kind"] == "private_key" and o["id"] == first["key"])
    public = next(o["id"] for o in objects if o["kind"] == "public_key" and o.get("label") == label)  # its pair
    assert device.call("sim.read_pubkey", key=public)["public_key"] == second["public_key"]


def test_keygen_without_a_key_pair_says_so(device, roles):
    with pytest.raises(RpcError) as e:
        device.call("sim.keygen", key="7F")  # no such private key container
    assert e.value.code == E_CARD and "not a key pair of this SIM" in str(e.value)
    if roles["ephemeral_key"] is None:  # and with no key named, a SIM without an ephemeral pair says so too
        with pytest.raises(RpcError) as e:
            device.call("sim.keygen")
        assert e.value.code == E_NO_ROLE and e.value.data["role"] == "ephemeral_key"


def test_read_public_key_matches_the_certificate(device):
    point = _certificate(device).public_key().public_bytes(serialization.Encoding.X962,
                                                           serialization.PublicFormat.UncompressedPoint)
    try:
        assert device.call("sim.read_pubkey")["public_key"] == point.hex().upper()
    except RpcError as e:
        if e.data.get("sw") != "6982":
            raise
        pytest.skip("this SIM does not let its signing public key be read (access 02, like the Thales MVP card)")


def test_on_card_verification(device):
    signed = device.call("sim.sign", message=b"verify me".hex())  # signed: SHA-256 of CONTEXT + message
    assert signed["hash"] == hashlib.sha256(CONTEXT + b"verify me").hexdigest().upper()
    sig = signed["signature"]
    assert device.call("sim.verify", hash=signed["hash"], signature=sig)["valid"] is True
    bad = sig[:-2] + ("00" if sig[-2:] != "00" else "01")
    assert device.call("sim.verify", hash=signed["hash"], signature=bad)["valid"] is False


def test_card_hashes_the_full_text(device):
    message = bytes(range(256)) * 2  # 512 bytes: more than one Update block
    sig = bytes.fromhex(device.call("sim.sign", message=message.hex(), on_card_hash=True)["signature"])
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    digest = hashlib.sha256(CONTEXT + message).digest()
    _certificate(device).public_key().verify(der, digest, ec.ECDSA(Prehashed(hashes.SHA256())))


def test_raw_apdu_passthrough(device):
    res = device.call("sim.apdu", apdu="0084000008")  # GET RANDOM, 8 bytes, on the applet's channel
    assert res["sw"] == "9000" and len(bytes.fromhex(res["data"])) == 8
    res = device.call("sim.apdu", apdu="00EE000000")
    assert res["sw"] == "6D00"  # unknown instruction: the status word comes back, it is not an error
