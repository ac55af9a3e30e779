# A cellular modem behind an AT channel (3GPP TS 27.007): readiness, SIM identity, network time.
#
# The base of the modem drivers: the vendor drivers (quectel.py, simcom.py) import it and add their
# ICCID spelling, PDP context and TCP sockets; modems.py picks the one the board definition names.
# The bring-up a data connection needs (registration, APN) is in bringup.py, loaded only for it.
import time

from atchannel import ATError, ATTimeout
from utc import epoch_seconds, utc_tuple

_FILL = 1460  # the most a send of ours gives the modem (modem_sockets.SEND_MAX)
_FILL_AFTER = 3  # unanswered ATs before the board ends a data input a reset may have left open
_ESC64 = b"\x1b" * 64


class Modem:
    ICCID_COMMANDS = ((b"AT+CCID", b"+CCID:"), (b"AT+QCCID", b"+QCCID:"), (b"AT+CICCID", b"+ICCID:"))
    SETUP = (b"ATE0", b"AT+CMEE=1")  # echo off, numeric +CME errors: wanted, but the channel copes without

    def __init__(self, at):
        self.at = at
        self._ready = False
        self.attached = False  # SIM ready, registered, APN set (bringup.py)
        self.warnings = []  # the set-up commands the modem refused

    def ready(self, attempts=10, wait_ms=300):
        """Wait until the modem answers, then set echo off and numeric errors; safe to call often.

        A set-up command the modem refuses is not fatal: it is noted in `warnings`."""
        self.at.drain()  # a reboot URC waiting there means the settings are gone (lost)
        if self._ready:
            return self
        for attempt in range(attempts):
            if attempt == _FILL_AFTER:
                self._end_data_input()
            try:
                self.at.command(b"AT", timeout_ms=wait_ms)
                break
            except ATError:  # still booting, or in the middle of printing URCs
                time.sleep_ms(50)
        else:
            e = ATTimeout("no answer to AT in %d tries (power, wiring, baud rate?)" % attempts)
            e.data = {"stage": "at"}  # the first bring-up stage (bringup.py)
            raise e
        warnings = []
        for cmd in self.SETUP:
            try:
                self.at.command(cmd)
            except ATTimeout:
                raise
            except ATError as e:
                warnings.append("%s refused: %s" % (cmd.decode(), e))
        self.warnings = warnings
        self._ready = True
        return self

    def _end_data_input(self):
        """A board reset while the modem waited for a send's data (after its `> `) leaves the modem taking
        whatever comes as that data, AT included: SIMCom's CASEND and Quectel's QISEND wait for the length
        they were given. Fill it with ESC, which cancels an open-ended input and which command mode ignores;
        what it completes goes to a connection the reset left behind, closed before reuse (tcp)."""
        for _ in range(_FILL // len(_ESC64) + 1):
            self.at.uart.write(_ESC64)
        time.sleep_ms(100)
        self.at.drain()  # the answer to that send, if any

    def lost(self):
        """Forget the modem's settings (after a timeout or a reboot URC): `ready` runs again."""
        self._ready = False
        self.attached = False

    def iccid(self):
        for cmd, prefix in self.ICCID_COMMANDS:
            try:
                lines = self.ready().at.command(cmd, prefix)
            except ATTimeout:
                raise  # no answer at all, not a spelling this modem lacks
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
    if not 20 <= y < 70:  # before the network sets it: 04/01/01, 70/01/01 (1970), 80/01/06 (1980)
        return None
    t = epoch_seconds((2000 + y, mo, d, h, mi, s)) - offset
    return utc_tuple(t)
