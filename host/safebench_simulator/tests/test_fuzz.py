"""Property-based tests: random AT lines and random bytes never crash, hang or garble the modem or the card."""

import re
import shutil
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safebench_simulator.card import Card
from safebench_simulator.modem import Modem

WORDS = ["", "E0", "I", "+CMEE", "+CPIN", "+CIMI", "+CCID", "+QCCID", "+CICCID", "+CSIM", "+CCHO", "+CGLA",
         "+CCHC", "+CRSM", "+CFUN", "+CSQ", "+CEREG", "+CCLK", "+CGMI", "+CGSN", "+QIACT", "+QIDEACT",
         "+QIOPEN", "+QISEND", "+QIRD", "+QICLOSE", "+CNACT", "+CAOPEN", "+CASEND", "+CARECV", "+CACLOSE",
         "+CASTATE", "+NOPE"]
APDUS = ["0070000001", "0070800100", "01A4040007A0000005590010", "81CB010000", "8184000008", "81B9000003840101",
         "81C0000000", "00A4040007A0000005590010", "802A00010D840101A1010391020001920104"]
FINAL = re.compile(rb"OK|ERROR|\+CME ERROR: [^\r\n]+|SEND OK|SEND FAIL")
REPLY = re.compile(rb"(?:\r\n(?:[^\r\n]*\r\n)+?)?\r\n(?P<final>" + FINAL.pattern + rb")\r\n(?:\r\n[^\r\n]+\r\n)*")

hexes = st.text("0123456789ABCDEFabcdefG", max_size=40) | st.sampled_from(APDUS)
params = st.one_of(
    st.integers(-5, 70000).map(str),
    st.sampled_from(["1", "0", "2", "10", "12258", "176", "999999999999999999999", ""]),
    hexes.map(lambda h: f'"{h}"'),
    hexes.map(lambda h: f'{len(h)},"{h}"'),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="\r"), max_size=30),
    st.sampled_from(['"TCP"', '"127.0.0.1"', '"example.invalid"', '"26/11/25,09:05:07+08"']),
)
args = st.lists(params, max_size=7).map(",".join)
lines = st.builds(lambda word, form, a: f"AT{word}{form.replace('ARGS', a)}",
                  st.sampled_from(WORDS), st.sampled_from(["", "?", "=?", "=ARGS"]), args)
junk_lines = st.text(st.characters(min_codepoint=1, max_codepoint=255, exclude_characters="\r\n"), max_size=300)


def refuse(address, timeout):
    raise ConnectionRefusedError("no network in property tests")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "template.json"
    Card.new().save(path)
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-run")


def fresh_modem(template, workdir, dialect):
    path = workdir / f"card-{dialect}.json"
    shutil.copyfile(template, path)
    modem = Modem(path, dialect=dialect, connect=refuse)
    modem.feed(b"ATE0\r")
    return modem, path


def check_reply(modem, line, deadline=2.0):
    """Feed one line; its output must be the echo (if on), then one well-formed reply."""
    echo = modem.echo
    start = time.monotonic()
    out = modem.feed(line + b"\r")
    assert time.monotonic() - start < deadline, f"{line!r} took too long"
    if echo:
        assert out.startswith(line + b"\r"), out
        out = out[len(line) + 1:]
    if not typed(line).strip(b" \t"):
        assert out == b""  # an empty line gets no answer
        return
    match = REPLY.fullmatch(out)
    assert match, (line, out)
    finals = [part for part in out.split(b"\r\n") if FINAL.fullmatch(part)]
    assert len(finals) == 1, (line, out)  # exactly one final result per command


def typed(line):
    """What a line amounts to after backspaces, with stray Ctrl-Z/ESC dropped."""
    text = bytearray()
    for byte in line:
        if byte in (0x08, 0x7F):
            del text[-1:]
        elif byte not in (0x1A, 0x1B):
            text.append(byte)
    return bytes(text)


def check_card(path):
    card = Card.load(path)  # never corrupted
    assert card.public_key(b"\x01")


FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.mark.timeout(120)
@pytest.mark.parametrize("dialect", ["generic", "quectel", "simcom"])
@FUZZ
@given(batch=st.lists(lines | junk_lines, min_size=1, max_size=12))
def test_random_lines(template, workdir, dialect, batch):
    modem, path = fresh_modem(template, workdir, dialect)
    for text in batch:
        check_reply(modem, text.encode("latin-1"))
    check_reply(modem, b"AT")
    check_card(path)
    modem.close()


@pytest.mark.timeout(120)
@FUZZ
@given(chunks=st.lists(st.binary(max_size=1500), max_size=8), dialect=st.sampled_from(["generic", "simcom"]))
def test_random_bytes(template, workdir, chunks, dialect):
    modem, path = fresh_modem(template, workdir, dialect)
    for chunk in chunks:
        start = time.monotonic()
        out = modem.feed(chunk)
        assert time.monotonic() - start < 2.0
        assert isinstance(out, bytes)
    modem.feed(b"\rATE0\r")  # finish whatever line the junk left open
    assert modem.feed(b"AT\r") == b"\r\nOK\r\n"  # and the modem still answers
    check_card(path)
    modem.close()


@pytest.mark.timeout(120)
@FUZZ
@given(batch=st.lists(lines, min_size=1, max_size=8), cuts=st.lists(st.integers(0, 400), max_size=10))
def test_chunking_does_not_matter(template, workdir, batch, cuts):
    """The same bytes in one read or cut anywhere give the same answer (deterministic commands only)."""
    stream = b"".join(line.encode() + b"\r" for line in batch if not re.search("CSIM|CGLA|CCLK|CCHO", line))
    whole, _ = fresh_modem(template, workdir, "generic")
    expected = whole.feed(stream)
    pieces, _ = fresh_modem(template, workdir, "generic")
    bounds = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    out = b"".join(pieces.feed(stream[a:b]) for a, b in zip(bounds, bounds[1:], strict=False))
    assert out == expected
    whole.close()
    pieces.close()
