"""Fault injection at the feed() level: the fault plan, SIM and modem state faults, control requests."""

import os

import pytest

from safebench_simulator.card import Card
from safebench_simulator.faults import FaultPlan, handle
from safebench_simulator.link import Outbox
from safebench_simulator.modem import Modem

REPLY = b'\r\n+CSIM: 6,"019000"\r\n\r\nOK\r\n'


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def card_path(tmp_path):
    path = tmp_path / "card.json"
    Card.new(iccid="8949000000000000001").save(path)
    return path


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def modem(card_path, clock):
    modem = Modem(card_path, clock=clock, fault_seed=7)
    modem.feed(b"ATE0\rAT+CMEE=1\r")
    return modem


def at(modem, line):
    return modem.feed(line.encode() + b"\r")


def test_plan_shapes_only_the_next_reply():
    plan = FaultPlan(seed=1)
    assert plan.shape(REPLY) == [(0.0, REPLY)]
    plan.drop = True
    assert plan.pending() == {"drop": True}
    assert plan.shape(REPLY) == []
    assert plan.shape(REPLY) == [(0.0, REPLY)]  # one-shot
    plan.delay_ms = 250
    assert plan.shape(REPLY, 0.5) == [(0.75, REPLY)]  # on top of the real-time delay
    plan.split = (10, 30)
    chunks = plan.shape(REPLY)
    assert b"".join(c for _, c in chunks) == REPLY and [len(c) for _, c in chunks] == [10, 10, 7]
    assert [d for d, _ in chunks] == [0.0, 0.03, 0.03]
    plan.garble = 3
    [(_, garbled)] = plan.shape(REPLY)
    assert len(garbled) == len(REPLY) and sum(a != b for a, b in zip(garbled, REPLY, strict=True)) == 3
    plan.garble = 1000
    [(_, garbled)] = plan.shape(b"OK")
    assert garbled[0] != ord("O") and garbled[1] != ord("K")
    plan.cme, plan.drop = 13, True
    plan.clear()
    assert plan.pending() == {} and plan.take_cme() is None


def test_held_reply_goes_out_when_the_board_sends_again(modem):
    assert handle(modem, {"cmd": "hold"})["status"]["pending"] == {"hold": True}
    assert at(modem, "AT+CCLK?") == b""  # later than any timeout: nothing until the board moves on
    late_then_probe = at(modem, "AT")
    assert late_then_probe.startswith(b"\r\n+CCLK: ") and late_then_probe.endswith(b"OK\r\n\r\nOK\r\n")
    assert at(modem, "AT") == b"\r\nOK\r\n"  # one-shot


def test_cme_fault_answers_without_running_the_command(modem):
    modem.faults.cme = 13
    assert at(modem, "ATE1") == b"\r\n+CME ERROR: 13\r\n"
    assert not modem.echo  # ATE1 never ran
    assert at(modem, "AT") == b"\r\nOK\r\n"


def test_drop_and_delay_apply_to_the_reply_not_the_echo(modem):
    at(modem, "ATE1")
    modem.faults.drop = True
    assert modem.feed(b'AT+CSIM=10,"0070000001"\r') == b'AT+CSIM=10,"0070000001"\r'
    assert modem.sessions == {}  # and the channel was opened all the same: only the answer was lost
    modem.faults.delay_ms = 400
    assert modem.receive(b"AT\r") == [(0.0, b"AT\r"), (0.4, b"\r\nOK\r\n")]


def test_sim_removed_and_reinserted(modem, card_path):
    assert modem.feed(b'AT+CCHO="A0000005590010"\r') == b"\r\n+CCHO: 1\r\n\r\nOK\r\n"
    modem.remove_sim()
    assert b"".join(c for _, c in modem.poll()) == b"\r\n+CPIN: NOT READY\r\n"
    for line in ('AT+CSIM=10,"0070000001"', 'AT+CCHO="A0000005590010"', "AT+CPIN?", "AT+CIMI", "AT+CCID",
                 'AT+CGLA=1,10,"8084000008"', "AT+CRSM=176,12258"):
        assert at(modem, line) == b"\r\n+CME ERROR: 10\r\n", line
    assert at(modem, "AT+CEREG?") == b"\r\n+CEREG: 0,0\r\n\r\nOK\r\n"
    assert modem.sessions == {}
    other = Card.new(iccid="8949000000000000027")
    other.save(card_path)  # a different card goes in
    modem.insert_sim()
    assert b"".join(c for _, c in modem.poll()) == b"\r\n+CPIN: READY\r\n"
    assert at(modem, "AT+CCID") == b"\r\n+CCID: 8949000000000000027\r\n\r\nOK\r\n"
    assert at(modem, 'AT+CGLA=1,10,"8084000008"') == b"\r\n+CME ERROR: 21\r\n"  # the session died
    assert at(modem, 'AT+CSIM=10,"0070000001"') == REPLY  # channel 1 is free again


def test_unreadable_image_keeps_the_sim_out(modem, card_path):
    modem.remove_sim()
    modem.poll()
    card_path.write_text("{not json")
    with pytest.raises(ValueError):
        modem.insert_sim()
    assert not modem.sim_present
    assert at(modem, "AT+CPIN?") == b"\r\n+CME ERROR: 10\r\n"


def test_sim_busy_for_a_while(modem, clock):
    modem.sim_busy(500)
    assert at(modem, 'AT+CSIM=10,"0070000001"') == b"\r\n+CME ERROR: 14\r\n"
    assert at(modem, "AT+CPIN?") == b"\r\n+CME ERROR: 14\r\n"
    assert at(modem, "AT+CSQ") == b"\r\n+CSQ: 24,99\r\n\r\nOK\r\n"  # not a SIM command
    clock.now += 0.499
    assert modem.status()["sim_busy_ms"] == 1
    assert at(modem, "AT+CIMI").startswith(b"\r\n+CME ERROR: 14")
    clock.now += 0.002
    assert at(modem, 'AT+CSIM=10,"0070000001"') == REPLY


def test_reboot_resets_state_and_says_so(modem, clock):
    at(modem, 'AT+CCHO="A0000005590010"')
    modem.faults.drop = True
    modem.reboot(boot_ms=200)
    assert modem.poll() == [(0.2, b"\r\nRDY\r\n\r\n+CPIN: READY\r\n")]
    assert modem.feed(b"AT\r") == b""  # still booting: the UART does not listen
    clock.now += 0.2
    assert modem.feed(b"AT\r") == b"AT\r\r\nOK\r\n"  # echo on again; and the dropped-reply fault is gone
    assert modem.cmee == 0 and modem.sessions == {}
    assert at(modem, 'AT+CSIM=10,"0070000001"').endswith(REPLY)  # the card was reset: channel 1 free


def test_card_reset_mid_command(modem):
    assert at(modem, 'AT+CSIM=10,"0070000001"') == REPLY
    modem.arm_card_reset()
    assert at(modem, 'AT+CSIM=24,"01A4040007A0000005590010"') == b"\r\n+CME ERROR: 13\r\n\r\n+CPIN: READY\r\n"
    assert not modem.status()["card_reset_armed"]
    # the reset closed channel 1 (the SELECT did reach the card, but that is gone with the reset too)
    assert at(modem, 'AT+CSIM=10,"81CB010000"') == b'\r\n+CSIM: 4,"6881"\r\n\r\nOK\r\n'
    assert at(modem, 'AT+CSIM=10,"0070000001"') == REPLY


def test_control_requests(modem):
    assert handle(modem, {"cmd": "status"})["status"]["sim"] == "present"
    assert handle(modem, {"cmd": "delay", "ms": 100})["status"]["pending"] == {"delay_ms": 100}
    assert handle(modem, {"cmd": "split", "chunk": 4})["status"]["pending"]["split"] == [4, 20]
    assert handle(modem, {"cmd": "garble"})["status"]["pending"]["garble"] == 1
    assert handle(modem, {"cmd": "cme", "code": 14})["status"]["pending"]["cme"] == 14
    assert handle(modem, {"cmd": "sim_busy", "ms": 1000})["status"]["sim_busy_ms"] == 1000
    assert handle(modem, {"cmd": "card_reset"})["status"]["card_reset_armed"]
    cleared = handle(modem, {"cmd": "clear"})["status"]
    assert cleared["pending"] == {} and cleared["sim_busy_ms"] == 0 and not cleared["card_reset_armed"]
    for bad in ({"cmd": "delay"}, {"cmd": "delay", "ms": -1}, {"cmd": "delay", "ms": True},
                {"cmd": "split", "chunk": 0}, {"cmd": "explode"}, ["drop"], {"cmd": "network_drop"},
                {"cmd": "cme", "code": "13"}):
        reply = handle(modem, bad)
        assert reply["ok"] is False and reply["error"], bad
    assert handle(modem, {"cmd": "sim_remove"})["status"]["sim"] == "removed"
    assert handle(modem, {"cmd": "sim_insert"})["status"]["sim"] == "present"
    assert handle(modem, {"cmd": "reboot"})["ok"]


def test_refused_commands_answer_error_until_cleared(modem):
    assert handle(modem, {"cmd": "refuse", "commands": ["ATE0", "at+cmee"]})["status"]["refused"] == ["ATE0", "AT+CMEE"]
    modem.reboot()  # refusals outlast it: the module still lacks the commands
    modem.poll()  # its start-up URCs
    assert modem.feed(b"ATE0\r") == b"ATE0\r\r\nERROR\r\n"  # echo stays on: ATE0 never ran
    assert modem.feed(b"AT+CMEE=1\r") == b"AT+CMEE=1\r\r\nERROR\r\n" and modem.cmee == 0
    assert modem.feed(b"AT+CMEE?\r") == b"AT+CMEE?\r\r\nERROR\r\n"
    assert modem.feed(b"ATE1\r") == b"ATE1\r\r\nOK\r\n"  # only the named lines
    assert modem.feed(b"AT+CMEEX\r").endswith(b"ERROR\r\n")  # unknown anyway, not refused by the prefix
    assert handle(modem, {"cmd": "clear"})["status"]["refused"] == []
    assert modem.feed(b"ATE0\r") == b"ATE0\r\r\nOK\r\n"
    for bad in ({"cmd": "refuse"}, {"cmd": "refuse", "commands": "ATE0"}, {"cmd": "refuse", "commands": [""]}):
        assert handle(modem, bad)["ok"] is False


def test_register_sets_what_the_network_reports(modem, clock):
    assert handle(modem, {"cmd": "register", "stat": 2, "ms": 500})["status"]["registration"] == 2
    assert at(modem, "AT+CEREG?") == b"\r\n+CEREG: 0,2\r\n\r\nOK\r\n"
    clock.now += 0.5
    assert modem.status()["registration"] == 1 and modem.status()["registered"]
    handle(modem, {"cmd": "register", "stat": 3})
    assert not modem.status()["registered"]
    assert handle(modem, {"cmd": "clear"})["status"]["registration"] == 1
    for bad in ({"cmd": "register"}, {"cmd": "register", "stat": 6}, {"cmd": "register", "stat": 1, "ms": -1}):
        assert handle(modem, bad)["ok"] is False


def test_outbox_keeps_order_behind_a_delayed_reply():
    box = Outbox()
    box.add([(0.0, b"echo"), (0.5, b"reply")], now=10.0)
    box.add([(0.0, b"urc")], now=10.1)  # raised later, but must not overtake the delayed reply
    assert box.ready(10.0) and box.timeout(10.0) == 0.0
    read, write = os.pipe()
    try:
        box.write(write)
        assert not box.ready(10.4) and box.timeout(10.4) == pytest.approx(0.1)
        for _ in range(2):  # the delayed reply, then the URC behind it
            assert box.ready(10.5)
            box.write(write)
        assert box.timeout(10.5) is None
        assert os.read(read, 100) == b"echoreplyurc"
    finally:
        os.close(read)
        os.close(write)
