"""Signatures made by the board's SIM, checked on the host with cryptography alone."""

from binascii import unhexlify

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from safebench import verify
from safebench.errors import RpcError, VerificationError
from safebench.provision import register_device
from safebench.readings import check
from safebench.registry import Registry
from safebench.rpc_codes import INVALID_PARAMS
from safebench.signing import check_signature, sign_and_verify


def _certificate(device, ca_cert):
    return verify.certificate_chain(unhexlify(device.call("sim.read_file")["data"]), ca_cert)  # the SIM's client_cert


def test_sign_message_round_trip(device, ca_cert):
    ev = sign_and_verify(device, b"reading 42", ca_cert)
    assert ev["verified"]
    assert len(unhexlify(ev["signature"])) == 64
    assert ev["iccid"] in ev["subject"]
    assert ev["key"] == device.call("sim.roles")["roles"]["signing_key"]


def test_signature_is_made_with_the_certificate_key(device, ca_cert):
    cert = _certificate(device, ca_cert)
    sig = unhexlify(device.call("sim.sign", message=b"abc".hex())["signature"])
    check_signature(cert, b"abc", sig)
    with pytest.raises(VerificationError, match="bad signature"):
        check_signature(cert, b"abd", sig)
    with pytest.raises(VerificationError, match="bad signature"):
        verify.raw_signature(cert, b"abc", sig)  # never over the bare message: it could be a reading's


def test_sign_takes_no_digest(device):
    # a digest of the caller's choice, signed by the reading key, could be any reading's
    with pytest.raises(RpcError) as e:
        device.call("sim.sign", hash="00" * 32)
    assert e.value.code == INVALID_PARAMS


def test_forged_reading_does_not_verify(device, ca_cert, tmp_path):
    """The attack of issue #11: a reading of the attacker's (seq 4294967301, value "hot") signed through sim.sign."""
    registry = Registry.of_state(tmp_path)
    register_device(device, ca_cert, registry)
    genuine = cbor2.loads(unhexlify(device.call("reading")["cose"]))
    protected, unprotected, payload, _ = genuine.value
    pack = cbor2.loads(payload)
    pack[0][2], pack[-1][2] = "hot", 4294967301
    forged_payload = cbor2.dumps(pack)
    sig_structure = cbor2.dumps(["Signature1", protected, b"", forged_payload])  # what a reading's signature covers
    signature = unhexlify(device.call("sim.sign", message=sig_structure.hex())["signature"])
    forged = cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, forged_payload, signature]))
    verdict = check(forged, registry, ca_cert, {})
    assert not verdict.ok and "bad signature" in verdict.reason  # before the fix: verified


def test_raw_signature_apdus_are_refused(device):
    key = bytes.fromhex(device.call("sim.roles")["roles"]["signing_key"])
    data = bytes((0x84, len(key))) + key + bytes.fromhex("A1010391020001920104")  # the reading key, pad-and-sign
    with pytest.raises(RpcError) as e:
        device.call("sim.apdu", apdu=(bytes((0x00, 0x2A, 0x00, 0x01, len(data))) + data).hex())
    assert e.value.code == INVALID_PARAMS and "sim.sign" in str(e.value)


def test_signatures_differ_each_time(device):
    # ECDSA draws a fresh nonce per signature; identical output would mean a fixed or replayed answer.
    a = device.call("sim.sign", message="00")["signature"]
    b = device.call("sim.sign", message="00")["signature"]
    assert a != b


def test_certificate_key_is_p256(device, ca_cert):
    assert isinstance(_certificate(device, ca_cert).public_key().curve, ec.SECP256R1)
