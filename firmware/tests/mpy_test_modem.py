# The modem base and the choice of driver: network time from +CCLK, the driver a board definition names,
# set-up commands a modem refuses, and the bring-up of a data connection stage by stage.
import sys

from expect import raises
from fakeuart import FakeUART

OK = b"\r\nOK\r\n"


def _info(line):
    return b"\r\n" + line + b"\r\n" + OK


class _Board:  # the board definition network_settings reads
    APN = "iot.example"


def _modem(driver, replies, board=_Board):
    from atchannel import ATChannel

    sys.modules["board"] = board
    uart = FakeUART(replies)
    return driver(ATChannel(uart)), uart


def test_cclk_to_utc():
    from modem import parse_cclk

    assert parse_cclk(b'+CCLK: "24/02/29,23:30:00+08"') == (2024, 2, 29, 21, 30, 0)  # +08 quarter hours = 2 h
    assert parse_cclk(b'+CCLK: "24/12/31,23:59:59-04"') == (2025, 1, 1, 0, 59, 59)
    assert parse_cclk(b'+CCLK: "04/01/01,00:00:00+00"') is None  # a year before 2020: not set by the network yet
    assert parse_cclk(b'+CCLK: "80/01/06,00:00:10+00"') is None  # the GPS epoch 1980, not 2080
    assert parse_cclk(b'+CCLK: "70/01/01,00:00:00+00"') is None  # the Unix epoch 1970, not 2070
    assert parse_cclk(b'+CCLK: "69/12/31,23:59:59+00"') == (2069, 12, 31, 23, 59, 59)
    assert parse_cclk(b"+CCLK: garbage") is None


def test_epoch_seconds_and_back():
    from utc import epoch_seconds, utc_tuple

    assert epoch_seconds((1970, 1, 1, 0, 0, 0)) == 0
    assert epoch_seconds((2000, 3, 1, 12, 0, 1)) == 951912001
    for t in ((2024, 2, 29, 23, 59, 59), (2100, 3, 1, 0, 0, 0), (1999, 12, 31, 1, 2, 3)):
        assert utc_tuple(epoch_seconds(t)) == t


def test_driver_by_board_definition():
    from atchannel import ATChannel
    from modems import for_board

    class Board:
        MODEM = "simcom"

    at = ATChannel(FakeUART())
    assert type(for_board(Board, at)).__name__ == "SimCom"
    Board.MODEM = "quectel"
    assert type(for_board(Board, at)).__name__ == "Quectel"
    assert type(for_board(object(), at)).__name__ == "Modem"  # no MODEM: the generic 27.007 modem


def test_refused_setup_commands_are_warnings_not_failures():
    from modem import Modem

    modem, uart = _modem(Modem, [OK, b"\r\nERROR\r\n", b"\r\nERROR\r\n", _info(b"+CCID: 8944")])
    assert modem.ready() is modem
    assert [w.split(":")[0] for w in modem.warnings] == ["ATE0 refused", "AT+CMEE=1 refused"]
    assert modem.iccid() == "8944"  # and it carries on
    assert uart.commands() == [b"AT", b"ATE0", b"AT+CMEE=1", b"AT+CCID"]


def test_no_answer_is_the_at_stage():
    from atchannel import ATTimeout
    from modem import Modem

    modem, _ = _modem(Modem, [])
    e = raises(ATTimeout, lambda: modem.ready(attempts=2, wait_ms=20))
    assert e.data == {"stage": "at"} and "no answer to AT" in str(e)


def test_quectel_bring_up_waits_for_registration_and_sets_the_apn():
    from quectel import Quectel

    modem, uart = _modem(Quectel, [OK, OK, OK, _info(b"+CPIN: READY"), OK,
                                   _info(b"+CEREG: 0,2"), _info(b"+CREG: 0,0"),  # searching...
                                   _info(b"+CEREG: 0,1"),  # ...registered
                                   OK, OK, OK])
    modem.attach()
    assert uart.commands() == [b"AT", b"ATE0", b"AT+CMEE=1", b"AT+CPIN?", b'AT+QICSGP=1,1,"iot.example","","",0',
                               b"AT+CEREG?", b"AT+CREG?", b"AT+CEREG?", b"AT+QIACT?", b"AT+QIACT=1"]
    assert modem.attached
    uart.replies = [_info(b'+QIACT: 1,1,1,"10.0.0.2"')]
    modem.attach()  # once per boot: only the context is checked again
    assert uart.commands()[10:] == [b"AT+QIACT?"]


def test_simcom_sets_the_attach_and_the_app_context_apn():
    from simcom import SimCom

    modem, uart = _modem(SimCom, [OK, OK, OK, _info(b"+CPIN: READY"), OK, OK, _info(b"+CEREG: 0,5"),
                                  _info(b'+CNACT: 0,0,"0.0.0.0"'), OK])
    modem.attach()
    assert uart.commands()[4:] == [b'AT+CGDCONT=1,"IP","iot.example"', b'AT+CNCFG=0,1,"iot.example","","",0',
                                   b"AT+CEREG?", b"AT+CNACT?", b"AT+CNACT=0,1"]  # 5: roaming is registered


def test_each_failed_stage_is_named():
    from bringup import BringUpError, bring_up
    from modem import Modem
    from quectel import Quectel

    class NoApn:
        pass

    modem, _ = _modem(Modem, [OK, OK, OK, b"\r\n+CME ERROR: 10\r\n"], NoApn)
    e = raises(BringUpError, lambda: bring_up(modem))
    assert e.data == {"stage": "sim", "cme": 10} and "SIM not inserted" in str(e)
    modem, uart = _modem(Modem, [OK, OK, OK, _info(b"+CPIN: READY"), OK, _info(b"+CEREG: 0,3"), b"\r\nERROR\r\n"])
    e = raises(BringUpError, lambda: bring_up(modem, timeout_ms=0))
    assert e.stage == "registration" and "CEREG: registration denied" in str(e)
    assert uart.commands()[3:] == [b"AT+CPIN?", b'AT+CGDCONT=1,"IP","iot.example"', b"AT+CEREG?", b"AT+CREG?"]
    modem, _ = _modem(Quectel, [OK, OK, OK, _info(b"+CPIN: READY"), _info(b"+CEREG: 0,1"), OK,
                                b"\r\n+CME ERROR: 30\r\n"], NoApn)
    e = raises(BringUpError, modem.attach)
    assert e.data == {"stage": "pdp", "cme": 30} and not modem.attached


def test_status_reports_each_stage():
    from bringup import status
    from modem import Modem

    modem, _ = _modem(Modem, [OK, b"\r\nERROR\r\n", OK, _info(b"+CPIN: READY"), _info(b"+CEREG: 0,2"),
                              _info(b"+CREG: 0,2")])
    assert status(modem) == {
        "stages": {"at": "ok", "sim": "ok", "registration": "searching", "pdp": None},
        "registration": {"stat": 2, "state": "searching", "via": "CEREG"}, "apn": "iot.example",
        "attached": False, "warnings": ["ATE0 refused: ERROR from modem for ATE0"]}


def test_network_json_overrides_the_board_definition():
    import network_settings

    sys.modules["board"] = _Board
    path = "/tmp/safebench-network-%d.json" % id(_Board)
    with open(path, "w") as f:
        f.write('{"apn": "sim.example", "registration_ms": 5000}')
    try:
        got = network_settings.load(path)
        assert (got["apn"], got["registration_ms"], got["auth"]) == ("sim.example", 5000, 0)
        with open(path, "w") as f:
            f.write('{"apn": 5}')
        assert "apn=5: not a str" in str(raises(ValueError, lambda: network_settings.load(path)))
        with open(path, "w") as f:
            f.write('{"apm": "typo"}')
        assert "no network setting apm" in str(raises(ValueError, lambda: network_settings.load(path)))
    finally:
        import os

        os.remove(path)
    assert network_settings.load(path)["apn"] == "iot.example"  # no file: the board definition's


def test_a_modem_left_waiting_for_data_is_filled_then_answers():
    """A board reset after `AT+CASEND=0,299` and its `> `: the modem takes every AT as data, until the board
    fills the send with ESC; then it answers again."""
    from modem import Modem

    modem, uart = _modem(Modem, [None, None, None] + [OK] * 8)
    modem.ready()
    written = bytes(uart.written)
    assert written.count(b"AT\r") >= 4 and written.count(b"\x1b") >= 1460
    assert written.index(b"\x1b") > written.index(b"AT\r")  # only once AT went unanswered


def test_a_modem_that_answers_is_sent_no_fill():
    from modem import Modem

    modem, uart = _modem(Modem, [OK, OK, OK])
    modem.ready()
    assert b"\x1b" not in bytes(uart.written)
