"""Signed readings: COSE_Sign1 by the SIM, checked on the host with pycose and cryptography."""

import base64

import cbor2
import pytest
from pycose.messages import CoseMessage

from safebench.provision import register_device
from safebench.readings import check, check_lines
from safebench.registry import Registry


@pytest.fixture
def registry(tmp_path, device, ca_cert):
    reg = Registry.of_state(tmp_path)
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
    accepted = registry.accepted()
    assert check(cose, registry, ca_cert, accepted).ok
    verdict = check(cose, registry, ca_cert, accepted)
    assert not verdict.ok and verdict.reason.startswith("replay: seq")


def _wipe(board_files, device):
    """What `safebench flash --erase` and a deploy again leave of the board's data: nothing."""
    board_files(device.port).remove("seq.")
    device.reboot()


def _file(path, readings):
    path.write_text("".join(base64.b64encode(bytes.fromhex(r["cose"])).decode() + "\n" for r in readings))
    return path


def _verify_file(path, registry, ca_cert):
    """`safebench verify`: a file checked later, on its own order."""
    with open(path, "rb") as f:
        return [v for _, v, _ in check_lines(f, path.name, registry, ca_cert, {})]


def test_a_wiped_board_never_makes_old_readings_valid_again(simulated, device, registry, ca_cert, tmp_path,
                                                           board_files):
    accepted = registry.accepted()  # what `read` keeps across the wipe
    before = [device.call("reading") for _ in range(3)]
    assert all(check(bytes.fromhex(r["cose"]), registry, ca_cert, accepted).ok for r in before)
    _wipe(board_files, device)
    after = [device.call("reading") for _ in range(3)]
    assert [r["seq"] for r in after] == [1, 2, 3]  # numbered from 1 again, under the same SIM key ...
    assert after[0]["epoch"] > before[-1]["epoch"]  # ... in a later epoch
    assert all(check(bytes.fromhex(r["cose"]), registry, ca_cert, accepted).ok for r in after)
    last = f"{after[0]['epoch']}/3"
    replayed = [check(bytes.fromhex(r["cose"]), registry, ca_cert, accepted).reason for r in before]
    assert replayed == [f"seq {r['seq']} of epoch {r['epoch']} is older than the device's last accepted {last}: "
                        "a replay or a wiped board" for r in before]
    new = _verify_file(_file(tmp_path / "after.txt", after), registry, ca_cert)
    assert [(v.ok, v.epoch, v.seq) for v in new] == [(True, after[0]["epoch"], seq) for seq in (1, 2, 3)]
    mixed = _verify_file(_file(tmp_path / "mixed.txt", after + before), registry, ca_cert)  # old fed after new
    assert [v.ok for v in mixed] == [True] * 3 + [False] * 3
    assert [v.reason for v in mixed[3:]] == replayed


def test_tampered_payload_is_rejected(device, registry, ca_cert):
    cose = bytearray(_reading(device))
    cose[cose.find(b"temperature")] ^= 0x20
    verdict = check(bytes(cose), registry, ca_cert, {})
    assert not verdict.ok and "bad signature" in verdict.reason


def test_unknown_device_is_rejected(device, tmp_path, ca_cert):
    verdict = check(_reading(device), Registry.of_state(tmp_path / "empty"), ca_cert, {})
    assert not verdict.ok and "unknown device" in verdict.reason and "run `safebench provision`" in verdict.reason


def test_kid_is_the_certificate_hash(device, registry):
    kid = device.call("reading")["kid"].lower()
    assert kid in registry.devices


def test_without_network_time_a_new_count_numbers_nothing(simulated, device, fault, board_files):
    from safebench import rpc_codes
    from safebench.errors import RpcError

    _wipe(board_files, device)
    device.call("sim.info", objects=False)
    device.call("sim.read_file")  # the SIM session is up: the reading's first AT command is the clock's
    fault.cme(3)  # AT+CCLK? answers "operation not allowed": the network has not set the clock
    with pytest.raises(RpcError) as refused:
        device.call("reading")
    assert refused.value.code == rpc_codes.E_NO_EPOCH and refused.value.data["type"] == "NoEpochError"
    assert "no running network clock" in str(refused.value)
    assert device.call("reading")["seq"] == 1  # nothing was numbered: the count starts once the time is known
