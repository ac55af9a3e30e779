# AT channel framing: final results, echo, URCs, CME errors, timeouts (runs on the MicroPython unix port).
from atchannel import ATChannel, ATError, ATTimeout, CMEError
from fakeuart import FakeUART


def test_ok_and_lines():
    at = ATChannel(FakeUART([b"\r\n+CCID: 8944\r\n\r\nOK\r\n"]))
    assert at.command("AT+CCID", b"+CCID:") == [b"+CCID: 8944"]


def test_echo_is_skipped():
    at = ATChannel(FakeUART([b"AT+CIMI\r\r\n001010123456789\r\n\r\nOK\r\n"]))
    assert at.command("AT+CIMI") == [b"001010123456789"]


def test_urc_is_never_a_reply():
    seen = []
    at = ATChannel(FakeUART([b"\r\n+CEREG: 5\r\n\r\n+CSIM: 4,\"9000\"\r\n\r\nOK\r\n"]), seen.append)
    assert at.command("AT+CSIM=4,\"0000\"", b"+CSIM:") == [b'+CSIM: 4,"9000"']
    assert seen == [b"+CEREG: 5"]


def test_urc_between_commands():
    seen = []
    at = ATChannel(FakeUART([b"\r\nOK\r\n"], unsolicited=b"\r\nRDY\r\n"), seen.append)
    at.command("AT")
    assert seen == [b"RDY"]


def test_cme_error():
    at = ATChannel(FakeUART([b"\r\n+CME ERROR: 10\r\n"]))
    try:
        at.command("AT+CSIM=10,\"0070000001\"", b"+CSIM:")
    except CMEError as e:
        assert e.cme == 10 and e.code == -32002 and e.data == {"cme": 10}  # rpc_codes.E_MODEM
        assert "SIM not inserted" in str(e)
    else:
        raise AssertionError("no CMEError")


def test_error():
    at = ATChannel(FakeUART([b"\r\nERROR\r\n"]))
    try:
        at.command("AT+FOO")
    except ATTimeout:
        raise AssertionError("ERROR is not a timeout") from None
    except ATError as e:
        assert "ERROR" in str(e)


def test_timeout():
    at = ATChannel(FakeUART([]))
    try:
        at.command("AT", timeout_ms=30)
    except ATTimeout as e:
        assert "no answer" in str(e)
    else:
        raise AssertionError("no timeout")


def test_over_long_line_is_dropped():
    at = ATChannel(FakeUART([b"x" * 3000 + b"\r\nOK\r\n"]))
    at.command("AT")
