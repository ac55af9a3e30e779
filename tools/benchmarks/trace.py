"""What one operation put on the modem UART, counted from the simulated modem's JSON-lines trace.

The modem appends a record per AT line ("at>" board to modem, "at<" modem to board), per APDU
("apdu>", then "apdu<" with the timing model's `card_ms`, `uart_ms`, `model_ms`) and per data-mode
payload ("data>"). `TraceReader.take()` returns the counts of the records appended since the last
call: the file length before and after an operation are its markers. Byte counts rebuild the wire
framing (`framing`), following the echo state through ATE0/ATE1 and modem reboots.

Modeled time on real hardware = the modem's `model_ms` of every APDU (card latency from the card
profile's `timing`, plus the UART time of its AT+CSIM line and answer) + the UART time of every
other AT line, at the profile's baud rate and 10 bits per byte.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from . import framing

BITS_PER_BYTE = 10
COUNT_FIELDS = ("at_commands", "apdus", "bytes_to_modem", "bytes_from_modem")


@dataclass
class Counts:
    at_commands: int = 0
    apdus: int = 0
    bytes_to_modem: int = 0
    bytes_from_modem: int = 0
    card_ms: float = 0.0
    model_ms: float = 0.0  # modeled time on real hardware: APDUs' model_ms + UART time of other lines

    def key(self):
        """The deterministic part, for comparing runs."""
        return tuple(getattr(self, f) for f in COUNT_FIELDS)

    def __add__(self, other):
        return Counts(*(getattr(self, f) + getattr(other, f) for f in (*COUNT_FIELDS, "card_ms", "model_ms")))

    def as_dict(self):
        d = asdict(self)
        d["card_ms"], d["model_ms"] = round(self.card_ms, 3), round(self.model_ms, 3)
        return d


class _Command:
    def __init__(self, sent, echoed):
        self.sent, self.received, self.apdu = sent, echoed, False
        self.info = []


def count(records, baud, echo=True):
    """Counts of a run of trace records; returns (Counts, echo state after them).

    `echo` is the modem's echo state before the first record (on after power-up).
    """
    c, cmd, other_bytes = Counts(), None, 0

    def close(result):
        nonlocal cmd, other_bytes
        cmd.received += framing.reply_bytes(cmd.info, result) if result else 0
        c.bytes_to_modem += cmd.sent
        c.bytes_from_modem += cmd.received
        if not cmd.apdu:  # an APDU's model_ms already holds the UART time of its AT+CSIM exchange
            other_bytes += cmd.sent + cmd.received
        cmd = None

    for rec in records:
        kind = rec.get("dir")
        if kind == "at>":
            if cmd is not None:  # the previous command got no final result (a dropped reply)
                close(None)
            line = rec["line"]
            sent = framing.command_bytes(line)
            cmd = _Command(sent, sent if echo else 0)
            c.at_commands += 1
            if line.upper() in ("ATE", "ATE0"):
                echo = False
            elif line.upper() == "ATE1":
                echo = True
        elif kind == "data>" and "len" in rec:
            cmd = cmd or _Command(0, 0)
            cmd.sent += rec["len"]
        elif kind == "apdu>":
            c.apdus += 1
            if cmd is not None:
                cmd.apdu = True
        elif kind == "apdu<":
            c.card_ms += rec.get("card_ms", 0.0)
            c.model_ms += rec.get("model_ms", 0.0)
        elif kind == "at<":
            line = rec["line"]
            if cmd is None:
                c.bytes_from_modem += framing.urc_bytes(line)
                other_bytes += framing.urc_bytes(line)
            elif line == "> ":  # a data prompt: the payload follows as its own record
                cmd.received += len(line) + framing.CRLF
                cmd.info = []
            elif framing.is_final(line):
                close(line)
            else:
                cmd.info.append(line)
        elif kind == "reboot":
            if cmd is not None:
                close(None)
            echo = True
    if cmd is not None:
        close(None)
    c.model_ms += other_bytes * BITS_PER_BYTE * 1000.0 / baud
    return c, echo


class TraceReader:
    """The trace of one simulated modem, read in windows: `take()` counts what was appended since."""

    def __init__(self, path, baud):
        self.path = Path(path)
        self.baud = baud
        self.offset = 0
        self.echo = True
        self.take()  # what happened before: only its echo state matters

    def records(self):
        """Complete records appended since the last call (a partly written last line waits)."""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        return [json.loads(line) for line in data[:end].splitlines() if line.strip()]

    def take(self):
        counts, self.echo = count(self.records(), self.baud, self.echo)
        return counts

    def take_split(self, ins):
        """(counts before, counts from) the AT command of the last APDU with instruction `ins`: an operation and
        the work the board does after it for the next one. All of it counts as before when there is none."""
        records = self.records()
        at = len(records)
        for i in range(len(records) - 1, -1, -1):
            rec = records[i]
            if rec.get("dir") == "apdu>" and bytes.fromhex(rec["hex"])[1] == ins:
                at = max((j for j in range(i) if records[j].get("dir") == "at>"), default=i)
                break
        before, self.echo = count(records[:at], self.baud, self.echo)
        after, self.echo = count(records[at:], self.baud, self.echo)
        return before, after

    def skip(self):
        """Forget what was appended (traffic of a setup step, not of a measured operation)."""
        self.take()
