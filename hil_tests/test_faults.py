"""Error paths: the modem and SIM misbehave, the firmware gives a typed error or recovers, and keeps serving.

Faults are injected through the simulated modem's control socket, so these run on the simulated bench.
"""

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from safebench.errors import RpcError
from safebench.rpc_codes import E_AT_TIMEOUT, E_CARD, E_MODEM, E_MODEM_REPLY
from safebench.signing import sign_and_verify


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


@pytest.mark.parametrize("split", [False, True], ids=["late", "late-in-pieces"])
def test_after_a_late_reply_every_command_gets_its_own_answer(device, fault, ca_cert, split):
    first = sign_and_verify(device, b"before", ca_cert)
    # The next reply comes after its command's 3 s timeout: held until the board sends again (a wall-clock
    # delay would not do on an emulated Pico, which spins through a UART timeout at a quarter of real speed).
    fault.hold()
    if split:
        fault.split(chunk=1, gap_ms=20)
    with pytest.raises(RpcError) as e:
        device.call("modem.time")
    assert e.value.code == E_AT_TIMEOUT
    for i in range(3):  # sim.info, sim.read_file, sim.sign each: checked on the host
        ev = sign_and_verify(device, b"after %d" % i, ca_cert)
        assert (ev["iccid"], ev["certificate"]) == (first["iccid"], first["certificate"])
    assert device.call("modem.time")["utc"]


def test_refused_setup_commands_are_warnings(device, fault, ca_cert):
    fault.refuse(["ATE0", "AT+CMEE=1"])
    fault.reboot()  # the firmware sets the modem up again, and cannot switch echo off or errors to numbers
    try:
        sign_and_verify(device, b"echo on", ca_cert)
        warnings = device.call("modem.status")["warnings"]
        assert [w.split(":")[0] for w in warnings] == ["ATE0 refused", "AT+CMEE=1 refused"]
        assert device.call("sim.info", objects=False)["modem_warnings"] == warnings
    finally:
        fault.clear()
        fault.reboot()  # set up as usual again for the tests after this one
    assert "modem_warnings" not in device.call("sim.info", objects=False)


def _cpu_ticks(pid):
    """utime + stime of process `pid`, in clock ticks (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@pytest.mark.timeout(120)
def test_a_vanished_modem_is_a_timeout_not_a_busy_loop(own_board):
    _, board, dev = own_board()
    _signs(dev)
    supervisor = board["pids"]["board"]
    [vm] = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()  # the MicroPython VM
    os.kill(board["pids"]["modem"], signal.SIGKILL)  # the modem's end of the UART hangs up
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(dev.call, "modem.time", timeout=15)
        time.sleep(0.3)  # the board now waits for the modem's answer
        before = _cpu_ticks(vm)
        time.sleep(1.0)
        spent = _cpu_ticks(vm) - before
        with pytest.raises(RpcError) as e:
            answer.result()
    assert e.value.code == E_AT_TIMEOUT
    # An emulated Pico's process is the emulator, which wakes for each of the guest's 1 ms sleeps; spinning,
    # it would use them all.
    limit = 50 if board.get("emulated") else 10
    assert spent <= limit, f"the board used {spent} of {os.sysconf('SC_CLK_TCK')} clock ticks waiting for 1 s"
    assert dev.call("info")["firmware"]  # still serving
    with pytest.raises(RpcError) as e:
        dev.call("sim.info", timeout=30)
    assert e.value.code == E_AT_TIMEOUT
