"""Error paths: the modem and SIM misbehave, the firmware gives a typed error or recovers, and keeps serving.

Faults are injected through the simulated modem's control socket, so these run on the simulated bench.
"""

import pytest

from safebench.errors import RpcError
from safebench.rpc_codes import E_AT_TIMEOUT, E_CARD, E_MODEM, E_MODEM_REPLY


def _signs(device):
    assert len(device.call("sim.sign", message="abcd")["signature"]) == 128


def test_sim_removed_then_reinserted(device, fault):
    _signs(device)
    fault.sim_remove()
    with pytest.raises(RpcError) as e:
        device.call("sim.sign", message="abcd")
    assert e.value.code == E_MODEM and e.value.data["cme"] == 10
    assert "SIM not inserted" in str(e.value)
    assert device.call("info")["firmware"]  # still serving
    fault.sim_insert()
    _signs(device)


def test_modem_reboot_is_survived(device, fault):
    _signs(device)
    fault.reboot()
    _signs(device)  # the channel the reboot closed is reopened, echo is switched off again


def test_dropped_reply_is_a_timeout_then_recovers(device, fault):
    _signs(device)
    fault.drop()
    with pytest.raises(RpcError) as e:
        device.call("sim.sign", message="abcd", timeout=60)
    assert e.value.code == E_AT_TIMEOUT and "no answer" in str(e.value)
    _signs(device)  # the session the lost answer left open was closed with its channel


def test_sim_busy_is_retried(device, fault):
    fault.sim_busy(400)
    _signs(device)  # CME 14 answers are retried for a while, as a SIM is busy right after boot


def test_garbled_reply_is_a_clear_error(device, fault):
    _signs(device)
    fault.garble(6)
    try:
        device.call("sim.sign", message="abcd", timeout=60)
    except RpcError as e:  # whatever the garbling hit, the error is one of ours, with a message
        assert e.code in (E_AT_TIMEOUT, E_MODEM, E_CARD, E_MODEM_REPLY), e
        assert str(e)
    _signs(device)


def test_reply_split_across_reads(device, fault):
    fault.split(chunk=3, gap_ms=5)
    _signs(device)


def test_card_reset_mid_command(device, fault):
    _signs(device)
    fault.card_reset()
    with pytest.raises(RpcError) as e:
        device.call("sim.sign", message="abcd", timeout=60)
    assert e.value.code in (E_AT_TIMEOUT, E_MODEM, E_CARD, E_MODEM_REPLY)
    _signs(device)


def test_cme_error_is_reported(device, fault):
    fault.cme(13)
    with pytest.raises(RpcError) as e:
        device.call("sim.random")
    assert e.value.code == E_MODEM and e.value.data["cme"] == 13 and "SIM failure" in str(e.value)
    assert device.call("sim.random", length=8)["random"]


def test_readings_never_repeat_a_sequence_number_through_faults(device, fault):
    seqs = [device.call("reading")["seq"]]
    for inject in (fault.drop, fault.reboot, lambda: fault.sim_busy(300), fault.card_reset):
        inject()
        try:
            seqs.append(device.call("reading", timeout=60)["seq"])
        except RpcError:
            pass  # a reading that failed is reported, not silently lost
        seqs.append(device.call("reading", timeout=60)["seq"])
    assert seqs == sorted(set(seqs))
