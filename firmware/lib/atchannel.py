# AT command channel to a cellular modem (3GPP TS 27.007 framing) over a machine.UART.
#
# One command at a time: write it, collect the lines that answer it until the final result
# (OK, ERROR, +CME ERROR), and hand every other line to the URC handler, so unsolicited
# result codes are never taken for replies. One preallocated line buffer; no per-byte objects.
import time

from micropython import const

_LINE_MAX = const(1100)  # a full +CSIM reply is 5 + 2*258 + some; longer lines are noise
_URC_WORDS = (b"RDY", b"RING", b"NO CARRIER", b"POWERED DOWN", b"NORMAL POWER DOWN", b"SMS Ready")

CME_TEXT = {
    0: "phone failure", 3: "operation not allowed", 4: "operation not supported", 10: "SIM not inserted",
    13: "SIM failure", 14: "SIM busy", 15: "SIM wrong", 20: "memory full", 22: "not found",
    30: "no network service", 50: "incorrect parameters", 100: "unknown",
}


class ATError(Exception):
    """The modem answered ERROR."""


class ATTimeout(ATError):
    """The modem did not finish answering in time."""


class CMEError(ATError):
    """The modem answered +CME ERROR: <n>."""

    def __init__(self, code, text=None):
        self.code = code
        super().__init__("+CME ERROR: %s (%s)" % (code, text or CME_TEXT.get(code, "see 3GPP TS 27.007 9.2")))


class ATChannel:
    """Commands and replies on `uart`, which the board layer opens with a short read timeout (~20 ms)."""

    def __init__(self, uart, urc=None):
        self.uart = uart
        self.urc = urc  # called with each unsolicited line (bytes)
        self._buf = bytearray(_LINE_MAX)
        self._mv = memoryview(self._buf)
        self._len = 0
        self.sent = 0  # bytes written and read, for benchmarks and traces
        self.received = 0
        self.commands = 0

    def command(self, cmd, prefix=None, timeout_ms=3000, bare=False):
        """Send `cmd` (str or bytes, without CR); return its information lines as a list of bytes.

        With `prefix` (e.g. b"+CSIM:") only lines starting with it are replies, and other lines are
        URCs, unless `bare`: then a line without any prefix is a reply too (modems differ there).
        """
        if isinstance(cmd, str):
            cmd = cmd.encode()
        self.drain()
        self.uart.write(cmd)
        self.uart.write(b"\r")
        self.sent += len(cmd) + 1
        self.commands += 1
        lines = []
        deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        while True:
            line = self._readline(deadline)
            if line is None:
                raise ATTimeout("no answer to %s within %d ms" % (cmd[:20].decode(), timeout_ms))
            if not line or line == cmd:  # blank separator or echo (ATE1)
                continue
            if line == b"OK":
                return lines
            if line == b"ERROR":
                raise ATError("ERROR from modem for %s" % cmd[:20].decode())
            if line.startswith(b"+CME ERROR:"):
                raise _cme(line)
            if prefix is not None and line.startswith(prefix):
                lines.append(line)
            elif (prefix is None or bare) and not _looks_unsolicited(line):
                lines.append(line)
            elif self.urc:
                self.urc(line)

    def drain(self):
        """Hand what arrived between commands (URCs, late replies) to the URC handler."""
        while self.uart.any():
            line = self._readline(time.ticks_ms())
            if line and self.urc:
                self.urc(line)

    def _readline(self, deadline):
        """The next line without CR/LF, b"" for a blank one, None at the deadline."""
        while True:
            end = self._find_eol()
            if end >= 0:
                line = bytes(self._mv[:end])
                skip = end + 1
                self._buf[:self._len - skip] = self._mv[skip:self._len]
                self._len -= skip
                return line.strip()
            if self._len == _LINE_MAX:  # an over-long line: keep its tail, it is noise anyway
                self._len = 0
            remaining = time.ticks_diff(deadline, time.ticks_ms())
            if remaining < 0:
                return None
            n = self.uart.readinto(self._mv[self._len:])
            if n:
                self._len += n
                self.received += n

    def _find_eol(self):
        buf = self._buf
        for i in range(self._len):
            if buf[i] == 10 or buf[i] == 13:
                return i
        return -1


def _cme(line):
    value = line[11:].strip()
    try:
        return CMEError(int(value))
    except ValueError:
        return CMEError(-1, value.decode())


def _looks_unsolicited(line):
    return line[:1] in (b"+", b"^", b"%") or line in _URC_WORDS
