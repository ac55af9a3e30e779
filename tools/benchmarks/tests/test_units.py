"""The benchmark suite's pure parts: trace counting (checked against the simulated modem's real
output), the IoT SAFE lower bounds (hand-counted vectors), the heap bisection, the baseline check
and the report."""

import json
import sys
from types import SimpleNamespace

import pytest

from benchmarks import baseline, framing, heap, operations, pico, report, run
from benchmarks import lower_bounds as lb
from benchmarks.measure import measure, percentile
from benchmarks.trace import TraceReader, count
from safebench.errors import DeviceError, RpcError
from safebench.rpc_codes import INTERNAL_ERROR, METHOD_NOT_FOUND
from safebench_simulator.card import Card
from safebench_simulator.modem import Modem
from safebench_simulator.timing import TimingModel

GENERIC = TimingModel.from_profile({"timing": {"baud": 115200, "latency_ms": {"default": 5, "2B": 300}}})

# A session as the firmware runs it: modem set-up, channel, applet, a signature, an ICCID, a close.
SESSION = [
    b"AT", b"ATE0", b"AT+CMEE=1",
    b'AT+CSIM=10,"0070000001"',
    b'AT+CSIM=24,"01A4040007A0000005590010"',
    b'AT+CSIM=36,"812A00010D840101A1010391020001920104"',
    b'AT+CSIM=80,"812B8001229E20' + b"11" * 32 + b'00"',
    b'AT+CSIM=10,"81C0000042"',
    b'AT+CSIM=8,"812A0101"',
    b"AT+CCID", b"AT+CCLK?", b"AT+BOGUS",
    b'AT+CSIM=10,"0070800100"',
]


@pytest.fixture
def modem(tmp_path):
    card = tmp_path / "card.json"
    Card.new("generic").save(card)
    m = Modem(card, trace_path=tmp_path / "trace.jsonl")
    yield m, tmp_path / "trace.jsonl"
    m.close()


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- trace counting -------------------------------------------------------------------------------

def test_counts_match_the_bytes_the_modem_really_sent(modem):
    m, trace = modem
    sent = received = 0
    received += len(m.startup())  # boot URCs: outside any command
    for line in SESSION:
        sent += len(line) + 1
        received += len(m.feed(line + b"\r"))
    c, echo = count(_records(trace), m.timing.baud)
    assert (c.bytes_to_modem, c.bytes_from_modem) == (sent, received)
    assert (c.at_commands, c.apdus, echo) == (len(SESSION), 7, False)
    # modeled time = card latencies + every byte on the UART: the modem's model_ms and ours agree
    assert c.model_ms == pytest.approx(c.card_ms + m.timing.uart_ms(sent + received), abs=0.01)
    assert c.card_ms == pytest.approx(6 * 5 + 300)


def test_echo_is_followed_through_ate_and_reboots():
    recs = [{"dir": "at>", "line": "AT"}, {"dir": "at<", "line": "OK"},
            {"dir": "at>", "line": "ATE0"}, {"dir": "at<", "line": "OK"},
            {"dir": "at>", "line": "AT"}, {"dir": "at<", "line": "OK"}]
    c, echo = count(recs, 115200)
    assert c.bytes_to_modem == 3 + 5 + 3
    assert c.bytes_from_modem == (3 + 6) + (5 + 6) + 6 and not echo
    c, echo = count([{"dir": "reboot"}, {"dir": "at>", "line": "AT"}, {"dir": "at<", "line": "OK"}], 115200, False)
    assert c.bytes_from_modem == 3 + 6 and echo


def test_reader_takes_windows_and_leaves_a_half_written_line(tmp_path):
    path = tmp_path / "trace.jsonl"
    path.write_text(json.dumps({"dir": "at>", "line": "ATE0"}) + "\n" + json.dumps({"dir": "at<", "line": "OK"}) + "\n")
    reader = TraceReader(path, 115200)
    assert reader.echo is False
    with open(path, "a") as f:
        f.write(json.dumps({"dir": "at>", "line": "AT+CCLK?"}) + "\n" + '{"dir": "at<", "li')
    c = reader.take()
    assert (c.at_commands, c.bytes_to_modem, c.bytes_from_modem) == (1, 9, 0)  # its answer not written yet
    with open(path, "a") as f:
        f.write('ne": "OK"}\n')
    assert reader.take().bytes_from_modem == 6


def test_a_window_splits_at_the_last_apdu_of_an_instruction(tmp_path):
    """The TLS row's critical path: what came before the Generate Key Pair (B9) made for the next handshake."""
    def exchange(apdu):
        return [{"dir": "at>", "line": f'AT+CSIM={len(apdu)},"{apdu}"'}, {"dir": "apdu>", "ch": 1, "hex": apdu},
                {"dir": "apdu<", "ch": 1, "hex": "9000", "card_ms": 5.0, "model_ms": 6.0},
                {"dir": "at<", "line": '+CSIM: 4,"9000"'}, {"dir": "at<", "line": "OK"}]

    path = tmp_path / "trace.jsonl"
    path.write_text("")
    reader = TraceReader(path, 115200)
    records = exchange("81B900000604") + exchange("8146000004") + exchange("81B900000604") + exchange("81C0000010")
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    before, after = reader.take_split(0xB9)
    assert (before.apdus, after.apdus, before.model_ms) == (2, 2, 12.0)
    assert (before + after).key() == count(records, 115200)[0].key()
    with open(path, "a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in exchange("8146000004")))
    before, after = reader.take_split(0xB9)  # none in the window: all of it is before
    assert (before.apdus, after.apdus) == (1, 0)


def test_framing_of_csim_lines():
    assert framing.csim_command(5) == 'AT+CSIM=10,"0000000000"'
    assert framing.csim_bytes(5, 2) == (24, len('\r\n+CSIM: 4,"0000"\r\n\r\nOK\r\n'))
    assert framing.csim_reply(2, quoted=False, space=False) == "+CSIM:4,0000"
    assert framing.reply_bytes([], "OK") == 6 and framing.reply_bytes(["a", "b"], "OK") == 2 + 1 + 2 + 1 + 2 + 6


# -- lower bounds ---------------------------------------------------------------------------------

T0 = lb.Card()
T1 = lb.Card(t0=False)


def test_sign_hash_bound_is_init_update_get_response_close():
    b = lb.sign_hash(T0)
    assert [(x.ins, x.command, x.response) for x in b.exchanges] == [
        (0x2A, 18, 0), (0x2B, 40, 0), (0xC0, 5, 66), (0x2A, 4, 0)]
    c = b.counts(T0, GENERIC)
    # AT+CSIM lines: 8 + digits + 2 quotes + comma + hex + CR; answers: +CSIM: n,"hex" and OK, framed
    assert (c["bytes_to_modem"], c["bytes_from_modem"]) == (50 + 94 + 24 + 21, 25 + 25 + 159 + 25)
    assert c["model_ms"] == pytest.approx(5 + 300 + 5 + 5 + (189 + 234) / 11.52, abs=0.1)
    assert [x.ins for x in lb.sign_hash(T1).exchanges] == [0x2A, 0x2B, 0x2A]
    assert len(lb.sign_hash(lb.Card(close_session=False)).exchanges) == 3


def test_read_file_takes_256_bytes_a_response():
    assert len(lb.read_file(498, T0).exchanges) == 4
    assert len(lb.read_file(512, T0).exchanges) == 4
    assert [x.response for x in lb.read_file(513, T0).exchanges if x.ins == 0xC0] == [256, 256, 1]
    assert len(lb.read_file(513, T1).exchanges) == 3


def test_sign_message_picks_the_cheaper_mode():
    short, long = lb.sign_message(8, T0, GENERIC), lb.sign_message(100, T0, GENERIC)
    assert "card" in short.notes and short.exchanges[1].command == 6 + 2 + 8
    assert "board" in long.notes and long.exchanges == lb.sign_hash(T0).exchanges
    assert len(lb.sign_full_text(600, T0).exchanges) == 1 + 2 + 2 + 1  # two 253-byte blocks, then the rest


def test_tls_and_reading_bounds():
    b = lb.tls_handshake(T0)
    assert [x.ins for x in b.exchanges] == [0xB9, 0xC0, 0x24, 0xD8, 0x24, 0x46, 0xC0, 0x2A, 0x2B, 0xC0, 0x2A]
    assert [a.line for a in b.at] == ["AT+CCLK?"] and b.exchanges[1].response == 3 + 3 + 71
    ahead = lb.tls_handshake(T0, key_made_ahead=True)
    assert [x.ins for x in ahead.exchanges] == [x.ins for x in b.exchanges][2:]
    r = lb.signed_reading(T0).counts(T0, GENERIC)
    assert (r["apdus"], r["at_commands"]) == (4, 5)
    assert lb.channel_setup(T0).counts(T0, GENERIC)["apdus"] == 2
    assert lb.sim_info(68, 277).counts(T0, GENERIC)["apdus"] == 3


def test_card_from_image():
    doc = {"aid": "A000000030534F12401770101495341", "roles": {"signing_key": "0002", "client_cert": "0003"},
           "profile": {"t0": False, "sig_length_form": 2, "modem": {"quoted_hex": False}}}
    card = lb.card_from_image(doc)
    assert (card.t0, card.sig_length_bytes, card.key_id_len, card.aid_len, card.quoted_hex) == (False, 2, 2, 15, False)


# -- heap bisection -------------------------------------------------------------------------------

@pytest.mark.parametrize("need", [16, 20, 44, 100, 252, 256])
def test_bisection_finds_the_smallest_passing_heap(need):
    best, tried = heap.smallest_passing(lambda k: k >= need, 16, 256, 4)
    assert best == need
    assert len(tried) <= 7 and tried[0] == (256, True)


def test_bisection_edges():
    assert heap.smallest_passing(lambda k: False, 16, 256, 4) == (None, [(256, False)])
    assert heap.smallest_passing(lambda k: True, 16, 16, 4)[0] == 16
    with pytest.raises(ValueError):
        heap.smallest_passing(lambda k: True, 16, 30, 4)


# -- baseline and report --------------------------------------------------------------------------

BASE = {"format": baseline.FORMAT, "operations": {"sign_hash": {
    "apdus": 4, "at_commands": 4, "bytes_to_modem": 1000, "bytes_from_modem": 1000, "heap_kb": 40}}}


@pytest.mark.parametrize("change, bad", [
    ({}, False), ({"apdus": 5}, True), ({"apdus": 3}, False), ({"at_commands": 5}, True),
    ({"bytes_to_modem": 1020}, False), ({"bytes_to_modem": 1021}, True), ({"bytes_from_modem": 1030}, True),
    ({"heap_kb": 44}, False), ({"heap_kb": 48}, True)])
def test_regressions_respect_the_margins(change, bad):
    measured = {"sign_hash": {**BASE["operations"]["sign_hash"], **change}}
    found = baseline.regressions(measured, BASE)
    assert bool(found) is bad
    assert not baseline.regressions({"other": {"apdus": 99}}, BASE)  # not in the baseline: not judged


def test_baseline_needs_heap_minimums(tmp_path):
    ops = {"sign_hash": {"status": "ok", "counts": {"apdus": 4, "at_commands": 4, "bytes_to_modem": 1,
                                                     "bytes_from_modem": 2}, "heap": None},
           "tls_handshake": {"status": "not available"}}
    with pytest.raises(baseline.BaselineError):
        baseline.from_results(ops)
    ops["sign_hash"]["heap"] = {"min_kb": 40}
    doc = baseline.from_results(ops)
    baseline.save(doc, tmp_path / "b.json")
    assert baseline.load(tmp_path / "b.json")["operations"] == {"sign_hash": {
        "apdus": 4, "at_commands": 4, "bytes_to_modem": 1, "bytes_from_modem": 2, "heap_kb": 40}}
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(baseline.BaselineError):
        baseline.load(tmp_path / "bad.json")


def test_committed_baseline_is_well_formed():
    doc = baseline.load()
    assert {"sign_message", "reading", "read_cert", "sim_info"} <= set(doc["operations"])
    for values in doc["operations"].values():
        assert all(isinstance(values[f], int) and values[f] > 0 for f in (*baseline.ABSOLUTE, *baseline.RELATIVE))


def test_percentile():
    assert percentile([3, 1, 2], 50) == 2 and percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    assert percentile([], 50) is None


def _results(operations, **more):
    """A results.json of one run with these operations (and, e.g., pico=...)."""
    return {"created": "now", "firmware": {"firmware": "0.3.0", "micropython": "1.29.0"}, "host": {"cpus": 2},
            "elapsed_s": 1, "method": {"runs": 5, "warmup": 2},
            "timing": {"profile": "generic", "baud": 115200, "latency_ms": {"default": 5}, "source": "guesses"},
            "operations": operations, **more}


def test_report_shows_ratios_and_unavailable_operations():
    counts = {"apdus": 8, "at_commands": 8, "bytes_to_modem": 224, "bytes_from_modem": 1260}
    results = _results({
            "read_cert": {"label": "certificate read", "status": "ok", "counts": counts, "model_ms": 168.8,
                          "wall_ms": {"median": 40.0},
                          "bound": {**{k: v // 2 for k, v in counts.items()}, "model_ms": 125.2},
                          "heap": {"min_kb": 40, "range": [16, 256, 4]}, "retained_bytes": 2048},
            "tls_handshake": {"label": "TLS 1.3 handshake", "status": "not available", "reason": "no tls.echo"}})
    text = report.markdown(results)
    assert "| certificate read | 8 / 4 (2.00×) |" in text and "40K" in text
    assert "not available: no tls.echo" in text and "guesses" in text


# -- operations the firmware does not offer --------------------------------------------------------

class _Firmware:
    """Answers like a board whose firmware has no tls.echo."""

    def __init__(self, error):
        self.error = error

    def reboot(self):
        return {}

    def call(self, method, **params):
        if method == "info":
            return {"mem_free": 1000}
        raise RpcError(method, self.error)


@pytest.mark.parametrize("error", [
    {"code": METHOD_NOT_FOUND, "message": "Method not found"},
    {"code": METHOD_NOT_FOUND, "message": "method tls.echo needs the tls feature, which is not deployed on this board",
     "data": {"feature": "tls"}},
    {"code": INTERNAL_ERROR, "message": "no module named 'tls_rpc'", "data": {"type": "ImportError"}}])
def test_missing_tls_echo_is_not_available(error):
    ctx = operations.Context(_Firmware(error), None, None, None, None, None, server=SimpleNamespace(port=1))
    with pytest.raises(operations.NotAvailable):
        operations._tls_request(ctx)
    op = operations.Operation("tls_handshake", "TLS", operations._tls_request, lambda ctx, res: None, None)
    res = measure(op, ctx, SimpleNamespace(skip=lambda: None, take=lambda: None))
    assert res["status"] == "not available" and "tls.echo" in res["reason"]


def test_out_of_memory_in_tls_echo_is_a_failure_not_an_absence():
    error = {"code": INTERNAL_ERROR, "message": "out of memory", "data": {"type": "MemoryError"}}
    ctx = operations.Context(_Firmware(error), None, None, None, None, None, server=SimpleNamespace(port=1))
    with pytest.raises(RpcError):
        operations._tls_request(ctx)


# -- the emulated Pico: ballast, figures, report ---------------------------------------------------

class _Heap:
    """A 32-bit MicroPython heap as the ballast sees it: 16-byte blocks, a bytearray = its object block
    plus its bytes rounded up to blocks (none for an empty one)."""

    def __init__(self, free):
        self.free = free

    def mem_free(self):
        return self.free

    def collect(self):
        pass

    def bytearray(self, n):
        self.free -= pico.BLOCK + -(-n // pico.BLOCK) * pico.BLOCK
        return bytes(n)


@pytest.mark.parametrize("start", [241600, 64 * 1024 + 16, 64 * 1024 + 32, 64 * 1024 + 1040, 64 * 1024])
def test_ballast_leaves_exactly_the_free_heap_asked_for(start, monkeypatch, capsys):
    fake = _Heap(start)
    monkeypatch.setitem(sys.modules, "gc", fake)
    exec(pico.ballast_boot_py(64), {"bytearray": fake.bytearray})
    assert fake.free == 64 * 1024
    assert pico.ballast_free(capsys.readouterr().out.splitlines()) == 64 * 1024


def test_a_measuring_boot_py_allocates_nothing(monkeypatch, capsys):
    fake = _Heap(228336)
    monkeypatch.setitem(sys.modules, "gc", fake)
    exec(pico.ballast_boot_py(pico.MEASURE_KB), {"bytearray": fake.bytearray})
    assert fake.free == 228336 and pico.ballast_free(capsys.readouterr().out.splitlines()) == 228336


def test_ballast_line_is_the_last_one_printed():
    lines = [b"MPY: soft reboot", b"ballast free 70000", b"ballast free 65536", b"ballast free ?", b'{"jsonrpc"}']
    assert pico.ballast_free(lines) == 65536
    assert pico.ballast_free([b"MPY: soft reboot"]) is None


def test_search_range_ends_at_the_boot_heap_on_a_step():
    assert pico.search_range(241600, 16, 1) == (16, 235, 1)
    assert pico.search_range(241600, 16, 4) == (16, 232, 4)
    heap.smallest_passing(lambda k: True, *pico.search_range(241600, 16, 4))  # a range smallest_passing takes
    assert pico.search_range(228352, 16, 1) == (16, 222, 1)  # 223 KB exactly: no room for a longer boot.py
    with pytest.raises(pico.BallastError):
        pico.search_range(16 * 1024, 16, 1)


def test_board_time_is_the_guest_clock_less_the_uart():
    assert pico.board_ms(1234.56, 34.5) == 1200.1


def test_guest_reply_is_found_among_the_raw_repl_output():
    out = 'MPY: soft reboot\nguest-timed {"us": 1500, "reply": {"id": 1, "result": {"a": 1}}}\n'
    assert pico.guest_reply(out) == {"us": 1500, "reply": {"id": 1, "result": {"a": 1}}}
    with pytest.raises(DeviceError, match="MemoryError"):
        pico.guest_reply("Traceback\nMemoryError: memory allocation failed\n")


def test_pico_images_option_refuses_an_unknown_image():
    assert run._parser().parse_args(["--pico-images", "v1.22.0"]).pico_images == ["v1.22.0"]
    assert run._parser().parse_args([]).pico_images == ["v1.28.0"]
    with pytest.raises(SystemExit):
        run._parser().parse_args(["--pico-images", "v1.99"])
    with pytest.raises(SystemExit):
        run.main(["--pico-step", "0"])


def test_report_has_a_heap_column_per_pico_image_and_the_goals():
    counts = {"apdus": 4, "at_commands": 5, "bytes_to_modem": 198, "bytes_from_modem": 273}
    results = _results({"reading": {"label": "signed reading", "status": "ok", "counts": counts, "model_ms": 355.9,
                                   "wall_ms": {"median": 30.0}, "heap": {"min_kb": 48, "range": [16, 256, 4]}}},
        pico={"v1.28.0": {"status": "ok", "image": "RPI_PICO-v1.28.0.uf2", "boot_free": 241600, "operations": {
            "reading": {"label": "signed reading", "status": "ok",
                        "heap": {"min_kb": 61, "range": [16, 235, 1], "free_ready": 50000, "free_after": 40000},
                        "time": {"guest_ms": 900.0, "uart_ms": 36.0, "board_ms": 864.0, "card_ms": 320.0}}}},
            "v1.22.0": {"status": "error", "error": "DeployError: no"}})
    text = report.markdown(results)
    assert "| heap min, unix port | heap min, Pico v1.28.0 | goal |" in text and "heap min, Pico v1.22.0" not in text
    assert "| 48K | 61K | ≤ 64K |" in text
    assert "| signed reading | 61K | 48.8 | 39.1 |  | 900.0 | 36.0 | 864.0 | 320.0 |" in text
    assert "v1.22.0: error: DeployError: no" in text
    results["pico"] = {"skipped": "node is not installed"}
    text = report.markdown(results)
    assert "Emulated Pico skipped: node is not installed" in text and "goal" not in text


def test_enrolment_rate_with_the_ca_key_in_softhsm_and_in_software(tmp_path):
    import subprocess
    from pathlib import Path

    from safebench import hsm

    if hsm.softhsm_module() is None:
        pytest.skip("SoftHSM2 is not installed (Debian softhsm2; `make test` installs it)")
    # a process of its own: SoftHSM2 reads one configuration per process, and this one's tests use others
    out = subprocess.run([sys.executable, "-c", "import json; from benchmarks import enrolment; "
                          "print(json.dumps(enrolment.measure(devices=6)))"], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    for key in ("hsm", "software"):
        assert res[key]["enrolled"] == 6 and res[key]["per_second"] > 0, res[key]
        assert res[key]["stage_us"]["server: issue (the CA's signature)"] > 0
    text = report.enrolment_section(res)
    assert "CA key in SoftHSM2 (PKCS#11)" in text and f"**{res['ratio']}×**" in text


def test_ingest_rate_stands_beside_openssl_with_the_reference_verdicts():
    from benchmarks import ingest_rate

    res = ingest_rate.measure(seconds=0.05, per_device=8)
    assert res["same_verdicts"]["agree"], res["same_verdicts"]
    assert set(res["same_verdicts"]["verdicts"]) == {"verified", "bad-signature", "replayed", "unknown-key"}
    rates = res["per_second"]
    assert rates["openssl"] > 0 and rates["verifier"] > rates["reference"]
    text = report.ingest_section(res)
    assert "OpenSSL P-256 verify (anchor)" in text and f"**{res['ratio']}×**" in text
