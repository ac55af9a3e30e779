"""UICC transport: APDU cases, logical channels, SELECT, T=0 61xx/6Cxx and GET RESPONSE."""

import re

import pytest

from safebench_simulator.card import Card
from safebench_simulator.uicc import Uicc, parse_apdu

AID = bytes.fromhex("A0000005590010")


class EchoApplet:
    """INS 01: command data reversed (or Le bytes); INS 02: always 4 bytes; INS 03: data with SW 6300.

    Records deselections and counts the commands it ran.
    """

    def __init__(self):
        self.deselected = []
        self.runs = 0

    def process(self, cla, ins, p1, p2, data, le):
        self.runs += 1
        if ins == 0x01:
            return (data[::-1] if data else bytes(range(le or 0))), 0x9000
        if ins == 0x02:
            return b"\x0A\x0B\x0C\x0D", 0x9000
        if ins == 0x03:
            return b"\x01\x02\x03", 0x6300
        return b"", 0x6D00

    def deselect(self, channel):
        self.deselected.append(channel)


@pytest.fixture
def applet():
    return EchoApplet()


@pytest.fixture
def uicc(applet):
    return Uicc(Card.new(), {AID: applet})


def tx(uicc, hex_apdu):
    return uicc.transmit(bytes.fromhex(hex_apdu)).hex().upper()


def select(channel=0):
    return f"{channel:02X}A4040007{AID.hex()}"


def test_parse_cases():
    assert parse_apdu(bytes.fromhex("00700000")).le is None
    assert parse_apdu(bytes.fromhex("0070000000")).le == 256
    c3 = parse_apdu(bytes.fromhex("01A4040002AABB"))
    assert (c3.data, c3.le, c3.channel) == (b"\xaa\xbb", None, 1)
    c4 = parse_apdu(bytes.fromhex("01A4040002AABB10"))
    assert (c4.data, c4.le) == (b"\xaa\xbb", 16)
    assert parse_apdu(bytes.fromhex("01A4040003AABB")) is None
    assert parse_apdu(bytes.fromhex("00A4")) is None


def test_malformed_apdu_is_wrong_length(uicc):
    assert tx(uicc, "01A4040003AABB") == "6700"


def test_open_and_close_channels(uicc):
    assert [tx(uicc, "0070000001") for _ in range(3)] == ["019000", "029000", "039000"]
    assert tx(uicc, "0070000001") == "6A81"  # none free
    assert tx(uicc, "0070800200") == "9000"  # close with trailing 00
    assert tx(uicc, "0070000000") == "029000"  # lowest free channel again; Le 00 accepted
    assert tx(uicc, "00708002") == "9000"  # close without trailing 00
    assert tx(uicc, "02A4040007" + AID.hex()) == "6881"  # closed channel
    assert tx(uicc, "0070800200") == "6881"  # closing it again fails
    assert tx(uicc, "0070800000") == "6A86"  # the basic channel cannot be closed
    assert tx(uicc, "0070400000") == "6A86"


def test_class_bytes(uicc):
    assert tx(uicc, select()) == "9000"
    assert tx(uicc, "0001000002AABB") == "6102"
    assert tx(uicc, "8001000002AABB") == "6102"  # proprietary class reaches the applet too
    assert tx(uicc, "A001000002AABB") == "6E00"
    assert tx(uicc, "4001000002AABB") == "6881"  # extended logical channel coding
    assert tx(uicc, "8070000001") == "6D00"  # 8n 70 is not MANAGE CHANNEL: the applet does not know it


def test_select(uicc, applet):
    assert tx(uicc, "0070000001") == "019000"
    assert tx(uicc, "01A4040007A0000005590011") == "6A82"
    assert tx(uicc, "0101000002AABB") == "6D00"  # nothing selected on channel 1
    assert tx(uicc, select(1)) == "9000"
    assert tx(uicc, select(1) + "00") == "9000"  # with Le: still no FCI
    assert applet.deselected == [1]  # the re-SELECT aborted channel 1's sessions
    assert tx(uicc, "01A4040007A0000005590011") == "6A82"
    assert tx(uicc, "0101000002AABB") == "6102"  # a failed SELECT keeps the previous selection
    assert tx(uicc, "01A4000002AABB") == "6A86"  # select by file id is not modelled
    assert tx(uicc, "0070800100") == "9000"
    assert applet.deselected == [1, 1]


def test_get_response(uicc):
    assert tx(uicc, select()) == "9000"
    assert tx(uicc, "0001000003AABBCC00") == "6103"
    assert tx(uicc, "00C0000005") == "6C03"  # wrong Le: data kept
    assert tx(uicc, "80C0000003") == "CCBBAA9000"  # CLA 8n accepted
    assert tx(uicc, "00C0000003") == "6985"  # nothing left


def test_get_response_partial_and_discard(uicc):
    assert tx(uicc, select()) == "9000"
    assert tx(uicc, "0001000003AABBCC") == "6103"
    assert tx(uicc, "00C0000001") == "CC6102"
    assert tx(uicc, "00C0000000") == "BBAA9000"  # 00 takes what is left
    assert tx(uicc, "0001000003AABBCC") == "6103"
    assert tx(uicc, "0001000001AA") == "6101"  # another command discards the pending data
    assert tx(uicc, "00C0000001") == "AA9000"
    assert tx(uicc, "0001000003AABBCC") == "6103"
    assert tx(uicc, "0070000001") == "019000"
    assert tx(uicc, "01C0000003") == "6985"  # GET RESPONSE on another channel gets nothing


def test_case2_le_rules(uicc):
    assert tx(uicc, select()) == "9000"
    assert tx(uicc, "0001000004") == "000102039000"  # exact Le: data directly
    assert tx(uicc, "0001000000") == bytes(range(256)).hex().upper() + "9000"  # 00 = 256
    assert tx(uicc, "0002000002") == "6C04"  # wrong Le: told the right one
    assert tx(uicc, "0002000004") == "0A0B0C0D9000"
    assert tx(uicc, "0002000000") == "0A0B0C0D9000"  # 00 accepts any length
    assert tx(uicc, "00020000") == "0A0B0C0D9000"  # case 1 reaches a T=0 card as P3 = 00


def test_reset_closes_everything(uicc, applet):
    assert tx(uicc, "0070000001") == "019000"
    assert tx(uicc, select(1)) == "9000"
    uicc.reset()
    assert applet.deselected == [1]
    assert tx(uicc, "0101000002AABB") == "6881"
    assert tx(uicc, "0070000001") == "019000"


def test_replay_sim_without_applet(vectors):
    """Orange issue #7: a SIM without the IoT SAFE applet; replayed APDU by APDU."""
    uicc = Uicc(Card.new(), applets={})
    replayed = 0
    for line in vectors.path("orange_issue7_no_applet.txt").read_text().splitlines():
        if not line or line.startswith("#") or line.startswith("not-modelled"):
            continue
        command, reply = re.fullmatch(r'AT\+CSIM=\d+,"(\w+)" -> \+CSIM: \d+,"(\w+)"', line).groups()
        assert tx(uicc, command) == reply, line
        replayed += 1
    assert replayed == 6
    assert tx(uicc, "01CB010000") == "6881"  # after the close, channel 1 is gone


def test_wrong_le_keeps_the_answer_for_the_repeat(uicc, applet):
    """After 6Cxx the host repeats the command with Le = xx: it gets the kept answer; nothing runs twice."""
    assert tx(uicc, select()) == "9000"
    runs = applet.runs
    assert tx(uicc, "0002000002") == "6C04"
    assert tx(uicc, "0002000004") == "0A0B0C0D9000"
    assert applet.runs == runs + 1
    assert tx(uicc, "0002000002") == "6C04"
    assert tx(uicc, "0001000004") == "000102039000"  # a different command: the kept answer is dropped
    assert tx(uicc, "0002000004") == "0A0B0C0D9000" and applet.runs == runs + 4


def test_warning_with_data(uicc):
    """6300 (object list continues) comes with its data, directly or after GET RESPONSE."""
    assert tx(uicc, select()) == "9000"
    assert tx(uicc, "00030000") == "0102036300"
    assert tx(uicc, "0003000001") == "6C03"
    assert tx(uicc, "0003000003") == "0102036300"
    assert tx(uicc, "0003000001AA") == "6103"
    assert tx(uicc, "00C0000002") == "01026101"
    assert tx(uicc, "00C0000001") == "036300"  # the final status comes with the last part


def test_direct_data_without_t0(applet):
    card = Card.new()
    card.profile["t0"] = False
    uicc = Uicc(card, {AID: applet})
    assert tx(uicc, select()) == "9000"
    assert tx(uicc, "0001000003AABBCC") == "CCBBAA9000"  # case 4: no 61xx
    assert tx(uicc, "0002000010") == "0A0B0C0D9000"  # a larger Le takes what there is
    assert tx(uicc, "0002000002") == "6C04"
    assert tx(uicc, "00C0000004") == "6985"


def test_lenient_implicit_channel(applet):
    card = Card.new()
    card.profile["lenient_implicit_channel"] = True
    uicc = Uicc(card, {AID: applet})
    assert tx(uicc, select(1)) == "9000"  # wolfSSL: no MANAGE CHANNEL first
    assert tx(uicc, "0070000001") == "029000"  # channel 1 counts as open
    assert tx(uicc, select(3)) == "6881"
