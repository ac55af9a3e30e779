# APDU transport over AT+CSIM: reply variants of real modems, T=0 61xx/6Cxx handling, status words.
from binascii import hexlify

from apdu import CardError, Csim, LogicalChannel, ModemReplyError, _parse_reply
from atchannel import ATChannel
from fakeuart import FakeUART


def _ok(hexa):
    return b'\r\n+CSIM: %d,"%s"\r\n\r\nOK\r\n' % (len(hexa), hexa)


def test_reply_variants():
    for line in (b'+CSIM: 6,"019000"', b"+CSIM: 6,019000", b'+CSIM:6,"019000"', b'+CSIM: 6,"019000"',
                 b'+CSIM: 99,"019000"', b"+CSIM: 6, 019000"):
        assert _parse_reply(line) == (b"\x01", 0x9000), line
    assert _parse_reply(b'+CSIM: 4,"6a82"') == (b"", 0x6A82)


def test_malformed_reply():
    for line in (b'+CSIM: 3,"900"', b'+CSIM: 4,"zz00"', b"+CSIM: 0,"):
        try:
            _parse_reply(line)
        except ModemReplyError:
            continue
        raise AssertionError(line)


def test_open_select_get_response_close():
    uart = FakeUART([_ok(b"019000"), _ok(b"9000"), _ok(b"6103"), _ok(b"AABBCC9000"), _ok(b"9000")])
    ch = LogicalChannel(Csim(ATChannel(uart)))
    ch.open([b"\xa0\x00\x00\x05\x59\x00\x10"])
    assert ch.send(0x84, le=3) == b"\xaa\xbb\xcc"
    ch.close()
    cmds = uart.commands()
    assert cmds[0] == b'AT+CSIM=10,"0070000001"'
    assert cmds[1] == b'AT+CSIM=24,"01A4040007A0000005590010"'
    assert cmds[2] == b'AT+CSIM=10,"8184000003"'
    assert cmds[3] == b'AT+CSIM=10,"81C0000003"'
    assert cmds[4] == b'AT+CSIM=10,"0070800100"'


def test_wrong_le_is_retried():
    uart = FakeUART([_ok(b"6C02"), _ok(b"11229000")])
    ch = LogicalChannel(Csim(ATChannel(uart)))
    ch.link, ch.number = ch.csim, 2
    assert ch.send(0x84, le=0) == b"\x11\x22"
    assert uart.commands()[1] == b'AT+CSIM=10,"8284000002"'


def test_status_word_error_names_the_meaning():
    uart = FakeUART([_ok(b"6A86")])
    ch = LogicalChannel(Csim(ATChannel(uart)))
    ch.link, ch.number = ch.csim, 1
    try:
        ch.send(0x2A, 0, 1, b"\x84\x01\x01", what="Compute Signature Init")
    except CardError as e:
        assert e.sw == 0x6A86
        assert "Compute Signature Init" in str(e) and "session already open" in str(e)
    else:
        raise AssertionError("no CardError")


def test_select_failure_closes_the_channel():
    uart = FakeUART([_ok(b"019000"), _ok(b"6A82"), _ok(b"9000")])
    ch = LogicalChannel(Csim(ATChannel(uart)))
    try:
        ch.open([b"\xa0\x00"])
    except CardError as e:
        assert e.sw == 0x6A82
    assert ch.number is None
    assert uart.commands()[-1] == b'AT+CSIM=10,"0070800100"'


def test_ccho_cgla_fallback():
    # A modem that refuses MANAGE CHANNEL through AT+CSIM: the channel comes from AT+CCHO instead.
    uart = FakeUART([b"\r\nERROR\r\n", b"\r\n+CCHO: 7\r\n\r\nOK\r\n",
                     b'\r\n+CGLA: 10,"0102039000"\r\n\r\nOK\r\n', b"\r\nOK\r\n"])
    ch = LogicalChannel(Csim(ATChannel(uart)))
    ch.open([b"\xa0\x00\x00\x05\x59\x00\x10"])
    assert ch.send(0x84, le=3) == b"\x01\x02\x03"
    ch.close()
    cmds = uart.commands()
    assert cmds[1] == b'AT+CCHO="A0000005590010"'
    assert cmds[2] == b'AT+CGLA=7,10,"8084000003"'  # channel bits zero: the modem fills them in
    assert cmds[3] == b"AT+CCHC=7"


def test_closed_channel_is_6881():
    ch = LogicalChannel(Csim(ATChannel(FakeUART())))
    assert ch.command(0x84, le=1) == (b"", 0x6881)


def test_next_aid_when_the_first_is_not_there():
    uart = FakeUART([_ok(b"019000"), _ok(b"6A82"), _ok(b"9000")])
    ch = LogicalChannel(Csim(ATChannel(uart)))
    assert ch.open([b"\xa0\x01", b"\xa0\x02"]) == b"\xa0\x02"
    assert uart.commands()[2] == b'AT+CSIM=14,"01A4040002A002"'


def test_busy_sim_is_not_a_reason_to_switch_to_ccho():
    from atchannel import CMEError

    uart = FakeUART([b"\r\n+CME ERROR: 14\r\n"])
    ch = LogicalChannel(Csim(ATChannel(uart)))
    try:
        ch.open([b"\xa0\x00"])
    except CMEError as e:
        assert e.cme == 14
    else:
        raise AssertionError("no CMEError")
    assert len(uart.commands()) == 1  # no AT+CCHO attempt


def test_short_modem_lines_get_short_apdus():
    # A modem that takes at most 110 characters a line (Pycom's LTE API): READ FILE goes in small chunks.
    from iotsafe import IoTSafe

    data = bytes(range(100))
    info = b"83010260010121010220020064"  # file 02, 100 bytes
    replies = [_ok(info + b"9000")]
    for offset in range(0, 100, 39):
        replies.append(_ok(bytes(hexlify(data[offset:offset + 39])).upper() + b"9000"))
    uart = FakeUART(replies)
    card = IoTSafe(Csim(ATChannel(uart), max_line=110))
    card.channel.link, card.channel.number = card.channel.csim, 1
    assert card.read_file(b"\x02") == data
    assert all(len(c) <= 110 for c in uart.commands())
    assert len(uart.commands()) == 4  # info + 3 chunks of at most 39 bytes


def test_other_cla_convention_on_6e00():
    uart = FakeUART([_ok(b"6E00"), _ok(b"AABB9000")])
    ch = LogicalChannel(Csim(ATChannel(uart)))
    ch.link, ch.number = ch.csim, 1
    assert ch.send(0x84, le=2) == b"\xaa\xbb"
    assert uart.commands() == [b'AT+CSIM=10,"8184000002"', b'AT+CSIM=10,"0184000002"']
