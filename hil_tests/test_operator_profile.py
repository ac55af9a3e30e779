"""Operator independence: an eSIM operator profile switch (through the simulated modem's fault control: the
card enables its other profile, new ICCID and IMSI) leaves the IoT SAFE applet and its keys as they are.
The board reads the new identity, the device keeps its kid, its readings keep verifying (pycose,
cryptography) and stay in order, and the registry follows the kid, not the ICCID."""

import time

import pytest

from safebench.provision import register_device
from safebench.readings import check
from safebench.registry import Registry


def _iccid_becomes(device, iccid, within_s=30):
    deadline = time.monotonic() + within_s
    while True:
        info = device.call("sim.info", objects=False)
        if info["iccid"] == iccid or time.monotonic() > deadline:
            assert info["iccid"] == iccid, f"the board still says ICCID {info['iccid']} after {within_s} s"
            return info
        time.sleep(0.2)


@pytest.fixture
def switched(fault, device):
    """The fault control's operator_switch; the card's first profile enabled again after the test."""
    first = device.call("sim.info", objects=False)["iccid"]
    yield fault.operator_switch
    if fault.request("status")["iccid"] != first:
        fault.operator_switch(first)


def test_an_operator_profile_switch_keeps_the_devices_identity(device, switched, ca_cert, tmp_path):
    registry = Registry.of_state(tmp_path)
    before = register_device(device, ca_cert, registry)
    info = device.call("sim.info", objects=False)
    accepted = registry.accepted()
    first = check(bytes.fromhex(device.call("reading")["cose"]), registry, ca_cert, accepted)
    assert first.ok, first.reason

    status = switched()
    assert status["iccid"] != info["iccid"] and status["sim"] == "present"
    now = _iccid_becomes(device, status["iccid"])  # once the card's URCs reached the board
    later = check(bytes.fromhex(device.call("reading")["cose"]), registry, ca_cert, accepted)
    assert later.ok, later.reason
    assert later.kid == first.kid == before["kid"] and later.seq > first.seq

    again = register_device(device, ca_cert, registry)  # the registry follows the kid
    assert again["kid"] == before["kid"] and again["iccid"] == now["iccid"]
    assert list(registry.devices) == [before["kid"]] and registry.devices[before["kid"]]["iccid"] == now["iccid"]
    assert registry.devices[before["kid"]]["last_seq"] == later.seq  # what was accepted stays accepted
