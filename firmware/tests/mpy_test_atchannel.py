# AT channel framing: final results, echo, URCs, CME errors, timeouts, and the step after a late
# answer (runs on the MicroPython unix port).
from atchannel import ATChannel, ATError, ATTimeout, CMEError
from fakeuart import FakeUART, Late

OK = b"\r\nOK\r\n"


def _csim(hexa):
    return b'\r\n+CSIM: %d,"%s"\r\n\r\nOK\r\n' % (len(hexa), hexa)


def _times_out(at, cmd, prefix=None):
    try:
        at.command(cmd, prefix, timeout_ms=30)
    except ATTimeout as e:
        return str(e)
    raise AssertionError("no timeout for %s" % cmd)


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


def test_lines_left_in_the_buffer_are_drained_before_the_next_command():
    seen = []
    at = ATChannel(FakeUART([OK + b"\r\nAPP RDY\r\n", b"\r\n001010123456789\r\n" + OK]), seen.append)
    at.command("AT")  # the URC came in the same read as the OK: it waits in the channel's buffer
    assert at.command("AT+CIMI") == [b"001010123456789"]
    assert seen == [b"APP RDY"]


def test_a_late_answer_is_never_the_next_commands():
    # The first APDU's answer comes after its timeout; the modem answers in order, so the probe's OK and
    # the next APDUs' answers queue behind it.
    uart = FakeUART([Late(_csim(b"AA9000")), OK, _csim(b"BB9000"), _csim(b"CC9000")])
    at = ATChannel(uart)
    _times_out(at, 'AT+CSIM=10,"00B0000001"', b"+CSIM:")
    assert at.command('AT+CSIM=10,"00B0000002"', b"+CSIM:") == [b'+CSIM: 6,"BB9000"']
    assert at.command('AT+CSIM=10,"00B0000003"', b"+CSIM:") == [b'+CSIM: 6,"CC9000"']
    assert uart.commands() == [b'AT+CSIM=10,"00B0000001"', b"AT", b'AT+CSIM=10,"00B0000002"',
                               b'AT+CSIM=10,"00B0000003"']  # one probe, and only after the timeout


def test_a_command_waits_for_a_slow_late_answer_or_times_out_unsent():
    uart = FakeUART([Late(_csim(b"AA9000"), 2), OK, OK, b"\r\n+CCID: 8944\r\n" + OK])
    at = ATChannel(uart)
    _times_out(at, 'AT+CSIM=10,"00B0000001"', b"+CSIM:")
    assert "still answering" in _times_out(at, "AT+CIMI")  # the late answer has not passed yet
    assert at.command("AT+CCID", b"+CCID:") == [b"+CCID: 8944"]  # it has now, with both probes' OKs
    assert uart.commands() == [b'AT+CSIM=10,"00B0000001"', b"AT", b"AT", b"AT+CCID"]  # AT+CIMI was never sent


def test_an_answer_lost_for_good_costs_a_pause_not_the_step():
    uart = FakeUART([None, OK, _csim(b"BB9000"), _csim(b"CC9000")])  # the first answer never comes
    at = ATChannel(uart)
    _times_out(at, 'AT+CSIM=10,"00B0000001"', b"+CSIM:")
    assert at.command('AT+CSIM=10,"00B0000002"', b"+CSIM:") == [b'+CSIM: 6,"BB9000"']
    assert at.command('AT+CSIM=10,"00B0000003"', b"+CSIM:") == [b'+CSIM: 6,"CC9000"']


def test_a_late_answer_split_mid_line_is_passed_whole():
    late = _csim(b"AA9000")
    uart = FakeUART([late[:9], _csim(b"BB9000")])  # the timeout struck mid-line
    at = ATChannel(uart)
    _times_out(at, 'AT+CSIM=10,"00B0000001"', b"+CSIM:")
    uart.rx += late[9:]  # the rest arrives before the next command
    assert at.command('AT+CSIM=10,"00B0000002"', b"+CSIM:") == [b'+CSIM: 6,"BB9000"']
    assert uart.commands()[1:] == [b'AT+CSIM=10,"00B0000002"']  # all of it had passed: no probe needed


def test_urcs_during_a_resync_still_reach_the_handler():
    seen = []
    at = ATChannel(FakeUART([Late(b"\r\n+CSQ: 20,99\r\n" + OK + b"\r\n+CPIN: READY\r\n"), OK, OK]), seen.append)
    _times_out(at, "AT+CSQ", b"+CSQ:")
    at.command("AT")
    assert seen == [b"+CSQ: 20,99", b"+CPIN: READY"]  # the late answer's line looks unsolicited: its handler decides
