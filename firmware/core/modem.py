# A cellular modem behind an AT channel (3GPP TS 27.007): readiness, SIM identity, network time.
#
# The base of the modem drivers: the vendor drivers (quectel.py, simcom.py) import it and add their
# ICCID spelling and TCP sockets; modems.py picks the one the board definition names.
import time

from atchannel import ATError, ATTimeout
from utc import epoch_seconds, utc_tuple


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
        except ATTimeout:
            raise
        except ATError:
            return None  # a modem without a network clock: the time is unknown, not an error
        return parse_cclk(lines[0]) if lines else None

    def on_urc(self, line):
        """Socket URCs (data waiting, peer closed) are tracked by the dialects."""

    def open_tcp(self, host, port, timeout_ms=30000):
        raise ATError("this modem driver has no TCP sockets; name the modem's dialect in the board definition")


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
