# The SIM session: the modem and the IoT SAFE applet behind it, on a logical channel kept open between
# requests, with the recovery a modem and card need (channel lost, SIM busy, modem rebooted).
#
# Made on the first SIM request (`session()`), so a board with no modem still boots and answers `info`.
import os
import sys
import time

import modems
import simroles
from apdu import CardError, Csim, close_stale_channels
from atchannel import ATChannel, CMEError
from iotsafe import IoTSafe

ENROLLED_FILE = "identity.bin"  # enrolled_identity.FILE (not imported for the name: it is the file's own reader)
_SW_CHANNEL_CLOSED = 0x6881
_CME_SIM_BUSY = 14
BUSY_RETRY_MS = 3000

_session = None


class SimSession:
    """The modem and the IoT SAFE applet behind it, on a logical channel kept open between requests."""

    def __init__(self):
        import board

        uart = board.modem_uart()
        board.modem_power_on(uart)
        self.at = ATChannel(uart, self._urc)
        self.modem = modems.for_board(board, self.at)
        self.csim = Csim(self.at, max_line=getattr(board, "MODEM_MAX_LINE", None))
        self._card = None
        self._stale = True  # channels a previous run may have left open are closed before the first use
        self._identity = None
        self._files = {}  # certificate files read this boot; forgotten when the card may have changed
        self._iccid = None
        self._roles = None
        self.ephemeral_point = None  # public key of a pair made ahead in the ephemeral container, never used yet
        self.binding_checked = False  # the SIM signed the board's binding record (binding.py), this SIM session

    def iccid(self):
        """The SIM's ICCID, asked of the modem once per boot (and again after the SIM may have changed)."""
        self.at.drain()  # a +CPIN URC waiting there says the SIM may be another (pulled, swapped, re-profiled)
        if self._iccid is None:
            self._iccid = self.modem.iccid()
        return self._iccid

    def file(self, file_id):
        """A file of the card, read once per boot (certificates do not change under a running board)."""
        data = self._files.get(file_id)
        if data is None:
            data = self._files[file_id] = self.applet(lambda c: c.read_file(file_id))
        return data

    @property
    def roles(self):
        """What each container of this SIM is for (simroles.Roles): sim.json's, the rest found on the card once
        per boot (the search's files stay in the cache), and again when the SIM may have changed. Once the SIM
        is enrolled (enrolled_identity.py, `roles.enrolled`) the key it made signs, under the certificate kept in
        flash. Small on purpose: this module is on the heap when the first reading's search peaks."""
        self.at.drain()  # as in iccid()
        if self._roles is None:
            roles = self.applet(lambda c: simroles.find(c, self._files))
            if ENROLLED_FILE in os.listdir():  # else never enrolled: the store's code stays off the heap
                import enrolled_identity

                try:
                    enrolled_identity.apply(self, roles)
                finally:
                    del sys.modules["enrolled_identity"]  # read once per SIM session
            self._roles = roles
        return self._roles

    def certificate(self):
        """The certificate the device signs under now: the enrolled one, else the card's client certificate."""
        roles = self.roles
        return roles.enrolled["cert"] if roles.enrolled else self.file(roles["client_cert"])

    def identity(self):
        """(ICCID, kid) of the SIM; kid = SHA-256 of the certificate it signs under. Read once per boot."""
        self.at.drain()  # as in iccid()
        if self._identity is None:
            import hashlib

            self._identity = (self.iccid(), hashlib.sha256(self.certificate()).digest())
        return self._identity

    def _urc(self, line):
        if line in (b"RDY", b"APP RDY") or line.startswith(b"+CPIN:"):
            self.modem.lost()  # the modem rebooted or the SIM came back: settings, channels, maybe the card
            self._card = None
            self._files, self._identity, self._iccid, self._roles = {}, None, None, None
            self.ephemeral_point = None  # the card may be another, or have lost the key
            self.binding_checked = False
        self.modem.on_urc(line)

    def applet(self, fn):
        """fn(iotsafe) with the applet selected.

        The channel is reopened once if the card lost it (6881 after a modem or card reset), and a
        busy SIM (+CME ERROR: 14, e.g. right after boot) is asked again for up to BUSY_RETRY_MS.
        """
        deadline = time.ticks_add(time.ticks_ms(), BUSY_RETRY_MS)
        reopened = False
        while True:
            try:
                return fn(self.card())
            except CardError as e:
                if e.sw != _SW_CHANNEL_CLOSED or reopened:
                    raise
                reopened = True
                self._card = None
            except CMEError as e:
                self._forget()
                if e.cme != _CME_SIM_BUSY or time.ticks_diff(deadline, time.ticks_ms()) < 0:
                    raise
                time.sleep_ms(100)
            except Exception:
                self._forget()
                raise

    def _forget(self):
        """After modem trouble what the card has open is unknown: close stale channels before reuse."""
        self._card = None
        self._stale = True
        self._files, self._identity, self._iccid, self._roles = {}, None, None, None  # the SIM may be another
        self.ephemeral_point = None
        self.binding_checked = False
        self.modem.lost()

    def card(self):
        """The IoT SAFE applet on its channel, opened first if need be (once, without `applet`'s retries)."""
        if self._card is None:
            self.modem.ready()
            if self._stale:
                self._stale = not close_stale_channels(self.csim)
            card = IoTSafe(self.csim)
            card.open()
            self._card = card
        return self._card


def session():
    """This board's SIM session, made on first use."""
    global _session
    if _session is None:
        _session = SimSession()
    return _session
