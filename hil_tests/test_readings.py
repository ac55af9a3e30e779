"""Signed readings: COSE_Sign1 by the SIM, checked on the host with pycose and cryptography."""

import cbor2
import pytest
from pycose.messages import CoseMessage

from safebench.provision import register_device
from safebench.readings import Registry, check


@pytest.fixture
def registry(tmp_path, device, ca_cert):
    reg = Registry(tmp_path / "registry.json")
    register_device(device, ca_cert, reg)
    return reg


def _reading(device):
    return bytes.fromhex(device.call("reading")["cose"])


def test_reading_verifies(device, registry, ca_cert):
    cose = _reading(device)
    verdict = check(cose, registry, ca_cert, {})
    assert verdict.ok, verdict.reason
    assert verdict.values[0]["unit"] == "Cel"
    msg = CoseMessage.decode(cose)  # a standard COSE_Sign1 to a third-party parser
    assert cbor2.loads(msg.payload)[0][-2].startswith("urn:dev:iccid:")


def test_sequence_numbers_increase_across_reboots(device):
    first = device.call("reading")["seq"]
    second = device.call("reading")["seq"]
    device.reboot()
    third = device.call("reading")["seq"]
    assert first < second < third


def test_replay_is_rejected(device, registry, ca_cert):
    cose = _reading(device)
    seen = {}
    assert check(cose, registry, ca_cert, seen).ok
    verdict = check(cose, registry, ca_cert, seen)
    assert not verdict.ok and "replayed" in verdict.reason


def test_tampered_payload_is_rejected(device, registry, ca_cert):
    cose = bytearray(_reading(device))
    cose[cose.find(b"temperature")] ^= 0x20
    verdict = check(bytes(cose), registry, ca_cert, {})
    assert not verdict.ok and "bad signature" in verdict.reason


def test_unknown_device_is_rejected(device, tmp_path, ca_cert):
    verdict = check(_reading(device), Registry(tmp_path / "empty.json"), ca_cert, {})
    assert not verdict.ok and "unknown kid" in verdict.reason


def test_kid_is_the_certificate_hash(device, registry):
    kid = device.call("reading")["kid"].lower()
    assert kid in registry.devices
