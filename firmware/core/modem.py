# A cellular modem behind an AT channel (3GPP TS 27.007): readiness, SIM identity, network time.
#
# Vendor dialects (quectel.py, simcom.py) add their ICCID spelling and TCP sockets; `for_board`
# picks the one the board definition names, importing only that one.
import time

from atchannel import ATError


class Modem:
    ICCID_COMMANDS = ((b"AT+CCID", b"+CCID:"), (b"AT+QCCID", b"+QCCID:"), (b"AT+CICCID", b"+ICCID:"))

    def __init__(self, at):
        self.at = at
        self._ready = False

    def ready(self, attempts=10, wait_ms=300):
        """Wait until the modem answers, then set echo off and numeric errors; safe to call often."""
        if self._ready:
            return self
        for _ in range(attempts):
            try:
                self.at.command(b"AT", timeout_ms=wait_ms)
                break
            except ATError:  # still booting, or in the middle of printing URCs
                time.sleep_ms(50)
        self.at.command(b"ATE0")
        self.at.command(b"AT+CMEE=1")
        self._ready = True
        return self

    def lost(self):
        """Forget the modem's settings (after a timeout or a reboot URC): `ready` runs again."""
        self._ready = False

    def iccid(self):
        for cmd, prefix in self.ICCID_COMMANDS:
            try:
                lines = self.ready().at.command(cmd, prefix)
            except ATError:
                continue
            if lines:
                return lines[0][len(prefix):].strip().strip(b'"').rstrip(b"F").decode()
        return None

    def network_time(self):
        """UTC (y, m, d, hh, mm, ss) from the network clock (AT+CCLK?), or None if it is not set."""
        try:
            lines = self.ready().at.command(b"AT+CCLK?", b"+CCLK:")
        except ATError as e:
            if type(e).__name__ == "ATTimeout":
                raise
            return None  # a modem without a network clock: the time is unknown, not an error
        return parse_cclk(lines[0]) if lines else None

    def on_urc(self, line):
        """Socket URCs (data waiting, peer closed) are tracked by the dialects."""

    def open_tcp(self, host, port, timeout_ms=30000):
        raise ATError("this modem driver has no TCP sockets; name the modem's dialect in the board definition")


class ModemSocket:
    """A TCP connection through the modem's socket commands, as a stream (read, readinto, write, close).

    Data is fetched when the modem announces it (a URC) or, failing that, polled, so a URC lost to
    a reboot only slows a read down. `timeout_ms` bounds a read that gets nothing.
    """

    def __init__(self, driver, conn_id, timeout_ms=30000):
        self.driver, self.id, self.timeout_ms = driver, conn_id, timeout_ms
        self.open = True
        self.blocking = True

    def setblocking(self, flag):
        self.blocking = flag

    def write(self, data):
        mv = memoryview(data)
        for i in range(0, len(mv), self.driver.SEND_MAX):
            self.driver.send(self.id, mv[i:i + self.driver.SEND_MAX])
        return len(mv)

    def readinto(self, buf, nbytes=None):
        """Bytes read into `buf` (at least 1), 0 at the end of the stream, None if non-blocking and
        nothing is there; OSError on timeout."""
        mv = memoryview(buf)[:nbytes or len(buf)]
        deadline = time.ticks_add(time.ticks_ms(), self.timeout_ms)
        while True:
            n = self.driver.recv(self.id, mv)
            if n:
                return n
            if self.id in self.driver.closed:
                return 0
            if not self.blocking:
                return None
            if time.ticks_diff(deadline, time.ticks_ms()) < 0:
                raise OSError("no data from the peer within %d ms" % self.timeout_ms)
            self.driver.wait_data(self.id, 200)

    def read(self, n=512):
        buf = bytearray(n)
        return bytes(buf[:self.readinto(buf)])

    def close(self):
        if self.open:
            self.open = False
            self.driver.close(self.id)


def parse_cclk(line):
    """`+CCLK: "yy/MM/dd,hh:mm:ss±zz"` (zz in quarter hours) -> UTC tuple, None if unset or malformed."""
    text = line.split(b":", 1)[-1].strip().strip(b'"')
    try:
        date, clock = text.split(b",")
        y, mo, d = (int(x) for x in date.split(b"/"))
        sign = 1 if b"+" in clock else -1
        hms, _, zone = clock.replace(b"-", b"+").partition(b"+")
        h, mi, s = (int(x) for x in hms.split(b":"))
        offset = sign * int(zone or b"0") * 15 * 60
    except ValueError:
        return None
    if y < 20:  # modems report 80/01/06 or 70/01/01 before the network has set the clock
        return None
    t = epoch_seconds((2000 + y, mo, d, h, mi, s)) - offset
    return utc_tuple(t)


def epoch_seconds(t):
    """Seconds since 1970-01-01 UTC of a (y, m, d, hh, mm, ss) tuple, on any port's epoch."""
    y, m, d = t[0], t[1], t[2]
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return days * 86400 + t[3] * 3600 + t[4] * 60 + t[5]


def utc_tuple(seconds):
    days, rem = divmod(seconds, 86400)
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    y = yoe + era * 400 + (m <= 2)
    return (y, m, d, rem // 3600, rem // 60 % 60, rem % 60)


def for_board(board, at):
    """The driver for the board's modem dialect (board.MODEM: "generic", "quectel" or "simcom")."""
    dialect = getattr(board, "MODEM", "generic")
    if dialect == "quectel":
        from quectel import Quectel

        return Quectel(at)
    if dialect == "simcom":
        from simcom import SimCom

        return SimCom(at)
    return Modem(at)
