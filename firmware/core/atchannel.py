# AT command channel to a cellular modem (3GPP TS 27.007 framing) over a machine.UART.
#
# One command at a time: write it, collect the lines that answer it until the final result
# (OK, ERROR, +CME ERROR), and hand every other line to the URC handler, so unsolicited
# result codes are never taken for replies. A command that timed out leaves the channel out of
# step until its late answer has passed (`_resync`). One preallocated line buffer; no per-byte objects.
import time

from micropython import const
from rpc_codes import E_AT_TIMEOUT, E_MODEM

_LINE_MAX = const(1100)  # a full +CSIM reply is 5 + 2*258 + some; longer lines are noise
_QUIET_MS = const(200)  # after a late final result, the probe's answer follows within this
_FINAL = (b"OK", b"ERROR", b"SEND OK", b"SEND FAIL")  # and +CME ERROR: <n>; one per command line
_URC_WORDS = (b"RDY", b"RING", b"NO CARRIER", b"POWERED DOWN", b"NORMAL POWER DOWN", b"SMS Ready")

CME_TEXT = {
    0: "phone failure", 3: "operation not allowed", 4: "operation not supported", 10: "SIM not inserted",
    13: "SIM failure", 14: "SIM busy", 15: "SIM wrong", 20: "memory full", 22: "not found",
    30: "no network service", 50: "incorrect parameters", 100: "unknown",
}


class ATError(Exception):
    """The modem answered ERROR. `code` and `data`: how the error travels in the command protocol."""

    code = E_MODEM
    data = {"cme": None}


class ATTimeout(ATError):
    """The modem did not finish answering in time."""

    code = E_AT_TIMEOUT
    data = None


class CMEError(ATError):
    """The modem answered +CME ERROR: <cme>."""

    def __init__(self, cme, text=None):
        self.cme = cme
        self.data = {"cme": cme}
        super().__init__("+CME ERROR: %s (%s)" % (cme, text or CME_TEXT.get(cme, "see 3GPP TS 27.007 9.2")))


class ATChannel:
    """Commands and replies on `uart`, which the board layer opens with a short read timeout (~20 ms)."""

    def __init__(self, uart, urc=None):
        self.uart = uart
        self.urc = urc  # called with each unsolicited line (bytes)
        self._buf = bytearray(_LINE_MAX)
        self._mv = memoryview(self._buf)
        self._len = 0
        self._owed = 0  # final result codes the modem still owes: 0 while the channel is in step

    def command(self, cmd, prefix=None, timeout_ms=3000, bare=False, data=None, payload=None):
        """Send `cmd` (str or bytes, without CR); return its information lines as a list of bytes.

        With `prefix` (e.g. b"+CSIM:") only lines starting with it are replies, and other lines are
        URCs, unless `bare`: then a line without any prefix is a reply too (modems differ there).
        `data` is written after the modem's `> ` prompt (socket sends). With `payload` (a buffer),
        the `prefix` line announces `<n>` raw bytes, which land in the buffer; the count is then
        returned instead of lines (socket reads).
        """
        if isinstance(cmd, str):
            cmd = cmd.encode()
        self.drain()
        if self._owed:
            self._resync(cmd, timeout_ms)
        self.uart.write(cmd + b"\r")
        self._owed = 1  # until its final result code is read
        deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        if data is not None:
            self._await_prompt(cmd, deadline, timeout_ms)
            self.uart.write(data)
        lines, got = [], None
        while True:
            if payload is not None and got is None and self._starts(prefix, deadline):
                got = self._take_payload(prefix, payload, deadline)
                continue
            line = self._readline(deadline)
            if line is None:
                raise ATTimeout("no answer to %s within %d ms" % (cmd[:20].decode(), timeout_ms))
            if not line or line == cmd:  # blank separator or echo (ATE1)
                continue
            if _is_final(line):
                self._owed = 0
                if line == b"OK" or line == b"SEND OK":
                    return lines if payload is None else (got or 0)
                if line.startswith(b"+CME ERROR:"):
                    raise _cme(line)
                raise ATError("%s from modem for %s" % (line.decode(), cmd[:20].decode()))
            if prefix is not None and line.startswith(prefix):
                lines.append(line)
            elif (prefix is None or bare) and not _looks_unsolicited(line):
                lines.append(line)
            elif self.urc:
                self.urc(line)

    def wait_urc(self, prefix, timeout_ms):
        """The next unsolicited line starting with `prefix` (others go to the URC handler), or ATTimeout."""
        deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        while True:
            line = self._readline(deadline)
            if line is None:
                raise ATTimeout("no %s within %d ms" % (prefix.decode(), timeout_ms))
            if line.startswith(prefix):
                return line
            self._between(line)

    def _resync(self, cmd, timeout_ms):
        """Let the late answers pass before `cmd` goes out; ATTimeout if they do not within `timeout_ms`.

        Modems answer command lines in order, one final result code each, so the channel counts those
        still owed, sends a probe `AT` behind them, and is in step again once the probe's answer has
        passed. Silence after a final result means the rest were lost (a dropped reply, a reboot).
        Only a channel out of step pays for the probe.
        """
        self.uart.write(b"AT\r")
        self._owed += 1
        deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        passed = False
        while self._owed:
            line = self._readline(deadline)
            if line is None:
                if passed:
                    break
                raise ATTimeout("no answer to %s: the modem is still answering an earlier command"
                                % cmd[:20].decode())
            if _is_final(line):
                self._owed -= 1
                passed = True
                deadline = time.ticks_add(time.ticks_ms(), _QUIET_MS)
            elif line and self.urc and _looks_unsolicited(line):
                self.urc(line)  # late information lines are dropped, URCs still count
        self._owed = 0

    def _await_prompt(self, cmd, deadline, timeout_ms):
        """Consume up to the `> ` prompt (it has no line end); lines before it are URCs or errors."""
        while True:
            for i in range(self._len):
                if self._buf[i] == 62:  # '>'
                    self._consume(i + 1)
                    return
            line = self._readline_if_complete()
            if line is not None:
                if line == b"ERROR" or line.startswith(b"+CME ERROR:"):
                    self._owed = 0
                    raise _cme(line) if line != b"ERROR" else ATError("ERROR from modem for %s" % cmd[:20].decode())
                if line and line != cmd and self.urc:
                    self.urc(line)
                continue
            if not self._fill(deadline):
                raise ATTimeout("no > prompt for %s within %d ms" % (cmd[:20].decode(), timeout_ms))

    def _starts(self, prefix, deadline):
        """True once the buffer (after blank lines and URCs) begins with `prefix`."""
        while True:
            while self._len and self._buf[0] in (10, 13):
                self._consume(1)
            n = min(self._len, len(prefix))
            if n and bytes(self._mv[:n]) != prefix[:n]:
                return False  # some other line: the caller reads it as a line
            if self._len >= len(prefix):
                return True
            if not self._fill(deadline):
                return False

    def _take_payload(self, prefix, dest, deadline):
        """`<prefix> <n>` then CRLF (Quectel) or `,` (SIMCom), then n raw bytes into `dest`."""
        while True:
            for i in range(len(prefix), self._len):
                c = self._buf[i]
                if c == 44 or c == 13:  # ',' or CR ends the count
                    n = int(bytes(self._mv[len(prefix):i]).strip() or b"0")
                    self._consume(i + (2 if c == 13 and i + 1 < self._len and self._buf[i + 1] == 10 else 1))
                    return self._take_raw(dest, min(n, len(dest)), deadline) if n else 0
            if not self._fill(deadline):
                raise ATTimeout("payload header %s incomplete" % prefix.decode())

    def _take_raw(self, dest, n, deadline):
        mv = memoryview(dest)
        got = min(n, self._len)
        mv[:got] = self._mv[:got]
        self._consume(got)
        while got < n:
            k = self.uart.readinto(mv[got:n]) if self.uart.any() else 0
            if k:
                got += k
            elif time.ticks_diff(deadline, time.ticks_ms()) < 0:
                raise ATTimeout("payload cut short: %d of %d bytes" % (got, n))
            else:
                time.sleep_ms(1)
        return n

    def _consume(self, k):
        self._buf[:self._len - k] = self._mv[k:self._len]
        self._len -= k

    def _fill(self, deadline):
        """Read more from the UART into the buffer; False at the deadline.

        While nothing has arrived the core sleeps a millisecond at a time instead of waiting inside
        the UART's read timeout, which on the rp2 port spins: a wait for the modem costs no CPU time."""
        if self._len == _LINE_MAX:
            self._len = 0  # an over-long line: it is noise
        while True:
            if self.uart.any():
                n = self.uart.readinto(self._mv[self._len:])
                if n:
                    self._len += n
                    return True
            if time.ticks_diff(deadline, time.ticks_ms()) < 0:
                return False
            time.sleep_ms(1)

    def _readline_if_complete(self):
        end = self._find_eol()
        if end < 0:
            return None
        line = bytes(self._mv[:end])
        self._consume(end + 1)
        return line.strip()

    def drain(self):
        """Take in what arrived between commands: the complete lines buffered, then the UART's."""
        while True:
            line = self._readline_if_complete()
            if line is None:
                if not self.uart.any() or not self._fill(time.ticks_ms()):
                    return
            else:
                self._between(line)

    def _between(self, line):
        """A line outside a command's answer: a late answer's final result passing, or one for the URC handler."""
        if self._owed and _is_final(line):
            self._owed -= 1
        elif line and self.urc:
            self.urc(line)

    def _readline(self, deadline):
        """The next line without CR/LF, b"" for a blank one, None at the deadline."""
        while True:
            line = self._readline_if_complete()
            if line is not None:
                return line
            if not self._fill(deadline):
                return None

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


def _is_final(line):
    return line in _FINAL or line.startswith(b"+CME ERROR:")


def _looks_unsolicited(line):
    return line[:1] in (b"+", b"^", b"%") or line in _URC_WORDS
