"""Modem commands at the feed() level: dialects, +CCHO/+CGLA/+CCHC, +CRSM, clock, network, styles, timing."""

import calendar
import json

import pytest

from safebench_simulator.card import Card
from safebench_simulator.crsm import ef_iccid, ef_imsi
from safebench_simulator.modem import Modem
from safebench_simulator.timing import TimingModel

ICCID, IMSI = "8949000000000000001", "001010000000001"
EF_ICCID_HEX = "989400000000000000F1"  # 19 digits padded with F, nibble-swapped
EF_IMSI_HEX = "080910100000000010"  # length 8, parity 9 (odd), digits nibble-swapped
SELECT_APPLET = "00A4040007A0000005590010"


@pytest.fixture
def card_path(tmp_path):
    path = tmp_path / "card.json"
    Card.new(iccid=ICCID, imsi=IMSI).save(path)
    return path


def quiet(card_path, **kwargs):
    """A modem with echo off and numeric CME errors."""
    modem = Modem(card_path, **kwargs)
    assert modem.feed(b"ATE0\r") == b"ATE0\r\r\nOK\r\n"
    assert at(modem, "AT+CMEE=1") == "\r\nOK\r\n"
    return modem


def at(modem, line):
    return modem.feed(line.encode() + b"\r").decode("latin-1")


def info(reply):
    """The information lines of a reply that ends in OK."""
    assert reply.endswith("\r\n\r\nOK\r\n"), reply
    return reply[2:-8].split("\r\n")


def with_profile(card_path, **sections):
    card = Card.load(card_path)
    for name, values in sections.items():
        card.profile[name] = {**card.profile.get(name, {}), **values}
    card.save(card_path)


# -- dialects ------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect, identification, startup", [
    ("generic", ["safebench", "SIM-MODEM", "Revision: safebench-sim 1.0"], ["RDY", "+CPIN: READY"]),
    ("quectel", ["Quectel", "BG95-M3", "Revision: BG95M3LAR02A03"],
     ["RDY", "+CFUN: 1", "+CPIN: READY", "+QUSIM: 1", "+QIND: SMS DONE", "APP RDY"]),
    ("simcom", ["SIM7080 R1951.08"], ["RDY", "+CFUN: 1", "+CPIN: READY", "SMS Ready"]),
])
def test_dialect_identity(card_path, dialect, identification, startup):
    modem = quiet(card_path, dialect=dialect)
    assert modem.startup().decode() == "".join(f"\r\n{u}\r\n" for u in startup)
    assert info(at(modem, "ATI")) == identification
    assert info(at(modem, "AT+CGMM")) == [modem.dialect.model]
    imei = info(at(modem, "AT+CGSN"))[0]
    assert len(imei) == 15 and imei.isdigit()


def test_iccid_spellings_per_dialect(card_path):
    generic, quectel, simcom = (quiet(card_path, dialect=d) for d in ("generic", "quectel", "simcom"))
    assert info(at(generic, "AT+CCID")) == [f"+CCID: {ICCID}"]
    assert info(at(generic, "AT+QCCID")) == [f"+QCCID: {ICCID}"]
    assert info(at(generic, "AT+CICCID")) == [f"+ICCID: {ICCID}"]
    assert info(at(quectel, "AT+QCCID")) == [f"+QCCID: {ICCID}"]
    assert at(quectel, "AT+CCID") == "\r\nERROR\r\n"  # not in the BG95 command set
    assert at(quectel, "AT+CICCID") == "\r\nERROR\r\n"
    assert info(at(simcom, "AT+CCID")) == [ICCID]  # SIMCom's AT+CCID answers the bare number
    assert info(at(simcom, "AT+CICCID")) == [f"+ICCID: {ICCID}"]
    assert at(simcom, "AT+QCCID") == "\r\nERROR\r\n"


def test_unknown_dialect(card_path):
    with pytest.raises(ValueError, match="unknown modem dialect"):
        Modem(card_path, dialect="nokia")


def test_socket_commands_only_in_socket_dialects(card_path):
    generic = quiet(card_path)
    for line in ("AT+QIACT=1", "AT+CNACT=0,1", 'AT+QIOPEN=1,0,"TCP","127.0.0.1",1,0,0'):
        assert at(generic, line) == "\r\nERROR\r\n"
    assert at(quiet(card_path, dialect="quectel"), "AT+CNACT=0,1") == "\r\nERROR\r\n"
    assert at(quiet(card_path, dialect="simcom"), "AT+QIACT=1") == "\r\nERROR\r\n"


# -- logical channels through the modem ----------------------------------------------------


def cgla(modem, session, apdu_hex):
    lines = info(at(modem, f'AT+CGLA={session},{len(apdu_hex)},"{apdu_hex}"'))
    length, text = lines[0].removeprefix("+CGLA: ").split(",")
    assert int(length) == len(text) - 2
    return text.strip('"')


def test_ccho_cgla_cchc(card_path, tmp_path):
    trace = tmp_path / "trace.jsonl"
    modem = quiet(card_path, trace_path=trace)
    assert info(at(modem, 'AT+CCHO="A0000005590010"')) == ["+CCHO: 1"]
    assert info(at(modem, 'AT+CCHO="a0000005590010"')) == ["+CCHO: 2"]  # lower case accepted
    assert modem.sessions == {1: 1, 2: 2}
    random = cgla(modem, 2, "8084000008")  # GET RANDOM with channel bits 0: the modem puts in channel 2
    assert len(random) == 20 and random.endswith("9000")
    assert at(modem, "AT+CCHC=1") == "\r\nOK\r\n"
    assert at(modem, 'AT+CGLA=1,10,"8084000008"') == "\r\n+CME ERROR: 21\r\n"  # closed session
    assert at(modem, "AT+CCHC=1") == "\r\n+CME ERROR: 21\r\n"
    assert info(at(modem, 'AT+CCHO="A0000005590010"')) == ["+CCHO: 3"]  # new id, channel 1 again
    assert modem.sessions == {2: 2, 3: 1}
    modem.close()
    apdus = [json.loads(line) for line in trace.read_text().splitlines()]
    apdus = [(r["ch"], r["hex"]) for r in apdus if r["dir"] == "apdu>"]
    assert apdus[:4] == [(0, "0070000001"), (1, "01A4040007A0000005590010"),
                         (0, "0070000001"), (2, "02A4040007A0000005590010")]
    assert apdus[4] == (2, "8284000008")
    assert apdus[5] == (0, "0070800100")


def test_cgla_sign_with_get_response(card_path):
    modem = quiet(card_path)
    session = info(at(modem, 'AT+CCHO="A0000005590010"'))[0].removeprefix("+CCHO: ")
    assert cgla(modem, session, "802A00010D840101A1010391020001920104") == "9000"
    status = cgla(modem, session, "802B8001229E20" + "11" * 32)
    assert status[:2] == "61"  # T=0: the modem does not fetch the response by itself
    response = cgla(modem, session, "00C00000" + status[2:])
    assert response.endswith("9000") and len(response) > 128


def test_ccho_errors(card_path):
    modem = quiet(card_path)
    assert at(modem, 'AT+CCHO="A000000559001"') == "\r\n+CME ERROR: 50\r\n"  # odd length
    assert at(modem, 'AT+CCHO="A000"') == "\r\n+CME ERROR: 50\r\n"  # too short for an AID
    assert at(modem, "AT+CCHO") == "\r\nERROR\r\n"
    for _ in range(4):  # an unknown AID closes the channel it opened, so channels do not leak
        assert at(modem, 'AT+CCHO="A0000000000001"') == "\r\n+CME ERROR: 22\r\n"
    for session in (1, 2, 3):
        assert info(at(modem, 'AT+CCHO="A0000005590010"')) == [f"+CCHO: {session}"]
    assert at(modem, 'AT+CCHO="A0000005590010"') == "\r\n+CME ERROR: 20\r\n"  # no channel left


def test_cgla_errors(card_path):
    modem = quiet(card_path)
    at(modem, 'AT+CCHO="A0000005590010"')
    for bad in ('AT+CGLA=1,9,"8084000"', 'AT+CGLA=1,12,"8084000008"', 'AT+CGLA=1,10,"808400000G"',
                'AT+CGLA=1,4,"8084"', "AT+CGLA=1", 'AT+CGLA=x,10,"8084000008"'):
        assert at(modem, bad) == "\r\n+CME ERROR: 50\r\n", bad
    assert at(modem, 'AT+CGLA=9,10,"8084000008"') == "\r\n+CME ERROR: 21\r\n"
    assert at(modem, 'AT+CGLA=1,10,"0070800100"') == "\r\n+CME ERROR: 3\r\n"  # channels are the modem's
    assert at(modem, "AT+CCHC=one") == "\r\n+CME ERROR: 50\r\n"


# -- restricted SIM access -------------------------------------------------------------------


def test_ef_encodings():
    assert ef_iccid(ICCID).hex().upper() == EF_ICCID_HEX
    assert ef_iccid("89014103211118510720").hex().upper() == "98101430121181157002"
    assert ef_imsi(IMSI).hex().upper() == EF_IMSI_HEX
    assert ef_imsi("00101123456789").hex().upper() == "0801101021436587F9"  # even count: parity 1


@pytest.mark.parametrize("command, answer", [
    ("AT+CRSM=176,12258,0,0,10", f'+CRSM: 144,0,"{EF_ICCID_HEX}"'),
    ("AT+CRSM=176,12258", f'+CRSM: 144,0,"{EF_ICCID_HEX}"'),  # no P3: the whole file
    ("AT+CRSM=176,12258,0,8,2", f'+CRSM: 144,0,"{EF_ICCID_HEX[16:]}"'),  # offset 8
    ("AT+CRSM=176,12258,0,0,12", "+CRSM: 108,10"),  # 6C0A: only 10 bytes there
    ("AT+CRSM=176,12258,0,10,1", "+CRSM: 107,0"),  # 6B00: offset beyond the end
    ("AT+CRSM=176,28423,0,0,9", f'+CRSM: 144,0,"{EF_IMSI_HEX}"'),
    ("AT+CRSM=176,28672,0,0,1", "+CRSM: 106,130"),  # 6A82: no such file
    ("AT+CRSM=214,12258,0,0,1,\"00\"", "+CRSM: 105,130"),  # 6982: read-only
    ("AT+CRSM=178,12258,1,4,10", "+CRSM: 105,129"),  # 6981: not a record file
    ("AT+CRSM=192,12258", '+CRSM: 144,0,"620F8202412183022FE28002000A8A0105"'),  # FCP with size 10
    ("AT+CRSM=242", "+CRSM: 144,0"),
])
def test_crsm(card_path, command, answer):
    assert info(at(quiet(card_path), command)) == [answer]


def test_crsm_errors(card_path):
    modem = quiet(card_path)
    for bad in ("AT+CRSM=176", "AT+CRSM=99,12258", "AT+CRSM=176,70000", "AT+CRSM=176,12258,0,0,300",
                "AT+CRSM=", "AT+CRSM=a,b"):
        assert at(modem, bad) == "\r\n+CME ERROR: 50\r\n", bad


# -- clock and network ----------------------------------------------------------------------


def test_cclk_is_network_time(card_path):
    now = calendar.timegm((2026, 11, 25, 9, 5, 7))
    modem = quiet(card_path, wall_clock=lambda: now)
    assert info(at(modem, "AT+CCLK?")) == ['+CCLK: "26/11/25,09:05:07+00"']
    assert at(modem, 'AT+CCLK="26/11/25,11:05:07+08"') == "\r\nOK\r\n"  # +2 h in quarter hours
    assert info(at(modem, "AT+CCLK?")) == ['+CCLK: "26/11/25,11:05:07+08"']
    assert at(modem, 'AT+CCLK="26/13/25,11:05:07+08"') == "\r\n+CME ERROR: 50\r\n"
    assert at(modem, 'AT+CCLK="yesterday"') == "\r\n+CME ERROR: 50\r\n"


def test_registration_follows_cfun(card_path):
    modem = quiet(card_path)
    assert info(at(modem, "AT+CEREG?")) == ["+CEREG: 0,1"]
    assert info(at(modem, "AT+CSQ")) == ["+CSQ: 24,99"]
    assert at(modem, "AT+CEREG=1") == "\r\nOK\r\n"
    assert at(modem, "AT+CFUN=4") == "\r\nOK\r\n\r\n+CEREG: 0\r\n"  # the URC follows the OK
    assert info(at(modem, "AT+CEREG?")) == ["+CEREG: 1,0"]
    assert info(at(modem, "AT+CSQ")) == ["+CSQ: 99,99"]
    assert at(modem, "AT+CFUN=1") == "\r\nOK\r\n\r\n+CEREG: 1\r\n"
    assert at(modem, "AT+CEREG=2") == "\r\nOK\r\n"
    assert info(at(modem, "AT+CEREG?")) == ['+CEREG: 2,1,"0001","01A2D001",7']
    assert at(modem, "AT+CEREG=3") == "\r\n+CME ERROR: 50\r\n"


def test_registration_set_by_the_network(card_path):
    clock = [100.0]
    modem = quiet(card_path, clock=lambda: clock[0])
    assert at(modem, "AT+CREG=1") == "\r\nOK\r\n"
    modem.set_registration(2, ms=1500)  # searching for 1.5 s, then home
    assert at(modem, "AT") == "\r\n+CREG: 2\r\n\r\nOK\r\n"  # the URC of the change
    assert info(at(modem, "AT+CEREG?")) == ["+CEREG: 0,2"] and info(at(modem, "AT+CREG?")) == ["+CREG: 1,2"]
    assert not modem.registered()
    clock[0] += 1.5
    assert info(at(modem, "AT+CEREG?")) == ["+CEREG: 0,1"] and modem.registered()
    modem.set_registration(5)
    assert at(modem, "AT+CREG=2") == "\r\n+CREG: 5\r\n\r\nOK\r\n"  # announced (CREG=1) before the reply
    assert info(at(modem, "AT+CREG?")) == ['+CREG: 2,5,"0001","01A2",0']  # roaming is registered too
    modem.set_registration(3)
    assert at(modem, "AT+CEREG?") == "\r\n+CREG: 3\r\n\r\n+CEREG: 0,3\r\n\r\nOK\r\n"  # denied


@pytest.mark.parametrize("dialect", ["generic", "quectel", "simcom"])
def test_apn_settings(card_path, dialect):
    modem = quiet(card_path, dialect=dialect)
    assert at(modem, 'AT+CGDCONT=1,"IP","iot.example"') == "\r\nOK\r\n"
    assert info(at(modem, "AT+CGDCONT?")) == ['+CGDCONT: 1,"IP","iot.example","0.0.0.0",0,0']
    assert at(modem, 'AT+CGDCONT=17,"IP","x"') == "\r\n+CME ERROR: 50\r\n"
    assert at(modem, "AT+CGDCONT=1") == "\r\nOK\r\n" and at(modem, "AT+CGDCONT?") == "\r\nOK\r\n"
    quectel = at(modem, 'AT+QICSGP=1,1,"m2m.example","user","pw",1')
    simcom = at(modem, 'AT+CNCFG=0,1,"m2m.example","user","pw",3')
    assert (quectel == "\r\nOK\r\n", simcom == "\r\nOK\r\n") == (dialect == "quectel", dialect == "simcom")
    if dialect == "quectel":
        assert info(at(modem, "AT+QICSGP=1")) == ['+QICSGP: 1,"m2m.example","user","pw",1']
        assert info(at(modem, "AT+CGDCONT?")) == ['+CGDCONT: 1,"IP","m2m.example","0.0.0.0",0,0']  # the same context
        assert at(modem, 'AT+QICSGP=1,4,"x"') == "\r\n+CME ERROR: 50\r\n"
    if dialect == "simcom":
        assert info(at(modem, "AT+CNCFG?"))[:2] == ['+CNCFG: 0,1,"m2m.example","user","pw",3',
                                                  '+CNCFG: 1,1,"","","",0']
        assert modem.status()["pdp"]["app_contexts"]["0"]["apn"] == "m2m.example"
    modem.reboot()
    at(modem, "ATE0")
    assert modem.status()["pdp"] == modem.pdp.status()  # kept through a reboot, as in the module's NVM


def test_cfun_reset_reboots(card_path):
    modem = quiet(card_path)
    at(modem, 'AT+CCHO="A0000005590010"')
    assert at(modem, "AT+CFUN=1,1") == "\r\nOK\r\n\r\nRDY\r\n\r\n+CPIN: READY\r\n"
    assert modem.echo and modem.cmee == 0 and modem.sessions == {}
    assert at(modem, "AT") == "AT\r\r\nOK\r\n"


# -- reply styles ---------------------------------------------------------------------------


def test_reply_style_switches(card_path):
    modem = quiet(card_path, quoted_hex=False, space_after_colon=False, ccho_prefix=False)
    assert info(at(modem, 'AT+CSIM=10,"0070000001"')) == ["+CSIM:6,019000"]
    assert info(at(modem, 'AT+CCHO="A0000005590010"')) == ["1"]  # bare session id
    assert info(at(modem, 'AT+CGLA=1,10,"8084000008"'))[0].startswith("+CGLA:20,")
    assert info(at(modem, "AT+CRSM=242")) == ["+CRSM:144,0"]


def test_max_line(card_path):
    modem = quiet(card_path, max_line=40)
    assert info(at(modem, 'AT+CSIM=10,"0070000001"')) == ['+CSIM: 6,"019000"']
    assert at(modem, f'AT+CSIM=24,"{SELECT_APPLET}"') == "\r\n+CSIM: 4,\"9000\"\r\n\r\nOK\r\n"  # 35 chars
    assert at(modem, 'AT+CSIM=30,"01A4040007A00000055900100000"') == "\r\nERROR\r\n"  # 41 characters
    assert at(modem, "AT") == "\r\nOK\r\n"


def test_style_defaults_come_from_the_card_profile(card_path):
    with_profile(card_path, modem={"quoted_hex": False, "space_after_colon": False, "ccho_prefix": False,
                                   "max_line": 200})
    modem = quiet(card_path)
    assert info(at(modem, 'AT+CSIM=10,"0070000001"')) == ["+CSIM:6,019000"]
    assert info(at(modem, 'AT+CCHO="A0000005590010"')) == ["1"]
    assert modem.style.max_line == 200
    explicit = quiet(card_path, quoted_hex=True)  # a keyword argument wins over the profile
    assert info(at(explicit, 'AT+CSIM=10,"0070000001"')) == ['+CSIM:6,"019000"']


def test_bad_style_is_a_value_error(card_path):
    with pytest.raises(ValueError, match="max_line"):
        Modem(card_path, max_line="long")
    with pytest.raises(ValueError, match="quoted_hex"):
        Modem(card_path, quoted_hex="yes")


# -- timing model ---------------------------------------------------------------------------


def test_timing_model_from_profile():
    profile = {"modem": {"baud": 9600}, "timing": {"baud": 115200, "latency_ms": {"default": 5, "b9": 1500}}}
    model = TimingModel.from_profile(profile)
    assert model.baud == 9600  # the modem's UART speed wins over the timing section's
    assert model.latency_ms(0xB9) == 1500 and model.latency_ms(0x2B) == 5
    assert model.uart_ms(96) == pytest.approx(100.0)  # 96 bytes * 10 bits at 9600 baud
    assert TimingModel.from_profile({}, baud=57600).baud == 57600
    assert TimingModel.from_profile({}).latency_ms(0xB9) == 0.0
    with pytest.raises(ValueError):
        TimingModel(0)


def test_trace_records_model_ms_per_apdu(card_path, tmp_path):
    with_profile(card_path, timing={"baud": 9600, "latency_ms": {"default": 7, "A4": 20}},
                 modem={"baud": 9600})
    trace = tmp_path / "trace.jsonl"
    modem = quiet(card_path, trace_path=trace)
    command, reply = 'AT+CSIM=10,"0070000001"', '\r\n+CSIM: 6,"019000"\r\n\r\nOK\r\n'
    assert at(modem, command) == reply
    at(modem, 'AT+CCHO="A0000005590010"')
    modem.close()
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    answers = [r for r in records if r["dir"] == "apdu<"]
    uart_ms = (len(command) + 1 + len(reply)) * 10 * 1000 / 9600  # no echo: ATE0 was sent first
    assert answers[0]["card_ms"] == 7 and answers[0]["uart_ms"] == pytest.approx(uart_ms, abs=0.001)
    assert answers[0]["model_ms"] == pytest.approx(uart_ms + 7, abs=0.001)
    # +CCHO runs two APDUs: each has its card time, the command's UART time goes to the last one
    assert [a["card_ms"] for a in answers[1:]] == [7, 20]
    assert answers[1]["uart_ms"] == 0 and answers[2]["uart_ms"] > 0


def test_realtime_delays_the_reply_by_the_model(card_path):
    with_profile(card_path, timing={"baud": 115200, "latency_ms": {"default": 40}})
    modem = quiet(card_path, realtime=True)
    chunks = modem.receive(b'AT+CSIM=10,"0070000001"\r')
    assert [c for _, c in chunks] == [b'\r\n+CSIM: 6,"019000"\r\n\r\nOK\r\n']
    uart_s = (24 + 27) * 10 / 115200
    assert chunks[0][0] == pytest.approx(0.040 + uart_s)
    assert modem.receive(b"AT\r")[0][0] == pytest.approx((3 + 6) * 10 / 115200)  # UART time only
