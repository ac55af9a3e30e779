"""ISO 7816-4 transport of the simulated SIM, as a T=0 card behind a modem's AT+CSIM.

The UICC owns what belongs to the card rather than to an application: short
APDU parsing, logical channels (MANAGE CHANNEL, CLA channel bits), application
selection per channel and the T=0 response rules. A command that sends data
and produces data answers ``61xx``; the host fetches the data with GET
RESPONSE. A command that only expects data returns it directly, or ``6Cxx``
when its Le is wrong; the card keeps that answer for the repeated command, so
a stateful command (the object list) is not run twice. No modem seen in the
wild issues GET RESPONSE by itself, so neither does this card.

The card's profile switches what differs between cards: ``t0`` false gives
data directly (T=1-like, as PC/SC stacks show it); ``lenient_implicit_channel``
accepts commands on channel 1 before MANAGE CHANNEL opened it (wolfSSL never
opens one). ``modeled_time_ms`` tells how long an exchange takes on a real card
and modem (profile ``timing``); the UICC sleeps the card's share only in
realtime mode (``realtime=True`` or ``SAFEBENCH_SIM_REALTIME=1``), never by default.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from . import sw
from .card import Card
from .profile import realtime_from_env
from .timing import TimingModel

INS_MANAGE_CHANNEL = 0x70
INS_SELECT = 0xA4
INS_GET_RESPONSE = 0xC0

LOGICAL_CHANNELS = (1, 2, 3)  # channels the CLA coding 0x00-0x03 / 0x80-0x83 can reach
CLA_PROPRIETARY = 0x80
CLA_OTHER_BITS = 0x7C  # secure messaging, chaining, extended channels: none supported
CLA_EXTENDED_CHANNELS = 0x40  # channels 4-19: not supported
SELECT_BY_NAME = 0x04
SELECT_P2_ALLOWED = (0x00, 0x0C)  # first occurrence, with or without FCI request; no FCI is ever sent
MANAGE_OPEN, MANAGE_CLOSE = 0x00, 0x80
IMPLICIT_CHANNEL = 1  # the channel a lenient card opens by itself (wolfSSL sends CLA 01/81 without opening)


class Applet(Protocol):
    def process(self, cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None) -> tuple[bytes, int]:
        ...

    def deselect(self, channel: int) -> None:
        ...


@dataclass(frozen=True)
class Command:
    """A parsed short command APDU; ``le`` is None when absent, else 1..256."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    @property
    def channel(self) -> int:
        return self.cla & 0x03


def parse_apdu(apdu: bytes) -> Command | None:
    """Short APDU of case 1 to 4; None if the length bytes do not add up."""
    if len(apdu) < 4:
        return None
    cla, ins, p1, p2 = apdu[:4]
    body = apdu[4:]
    if not body:
        return Command(cla, ins, p1, p2)
    if len(body) == 1:
        return Command(cla, ins, p1, p2, le=body[0] or 256)
    lc = body[0]
    if lc == 0:  # would be an extended-length APDU
        return None
    if len(body) == 1 + lc:
        return Command(cla, ins, p1, p2, body[1:])
    if len(body) == 2 + lc:
        return Command(cla, ins, p1, p2, body[1:-1], body[-1] or 256)
    return None


def _with_sw(data: bytes, status: int) -> bytes:
    return data + sw.to_bytes(status)


class Uicc:
    """A UICC with applications selectable by AID on the basic and three logical channels."""

    def __init__(self, card: Card, applets: dict[bytes, Applet], *, realtime: bool | None = None):
        self.card = card
        self._applets = dict(applets)
        self._t0 = card.profile["t0"]
        self._lenient_channel = card.profile["lenient_implicit_channel"]
        self.timing = TimingModel.from_profile(card.profile)
        self.realtime = realtime_from_env() if realtime is None else realtime
        self._open = {0}  # open channels; the basic channel is always open
        self._selected: dict[int, Applet] = {}  # channel -> selected applet
        self._pending: tuple[int, bytes, int] | None = None  # (channel, data, status) for GET RESPONSE
        self._refused: tuple[bytes, bytes, int] | None = None  # (header, data, status) answered 6Cxx

    def reset(self) -> None:
        """Card reset: close logical channels, abort sessions, forget pending data and volatile keys."""
        for channel, applet in self._selected.items():
            applet.deselect(channel)
        self._open = {0}
        self._selected = {}
        self._pending = None
        self._refused = None
        self.card.clear_volatile()

    def transmit(self, apdu: bytes) -> bytes:
        """One command APDU in, response data followed by SW1 SW2 out."""
        response = self._transmit(apdu)
        if self.realtime:
            time.sleep(self.timing.card_ms(apdu) / 1000)
        return response

    def modeled_time_ms(self, apdu: bytes, response: bytes) -> float:
        """How long this exchange takes on a real card behind a modem (card latency + UART transfer)."""
        return self.timing.modeled_time_ms(apdu, response)

    def _transmit(self, apdu: bytes) -> bytes:
        command = parse_apdu(apdu)
        pending, self._pending = self._pending, None  # only a GET RESPONSE may still fetch it
        refused, self._refused = self._refused, None  # only the repeated command may still fetch it
        if command is None:
            return _with_sw(b"", sw.WRONG_LENGTH)
        if command.cla & CLA_OTHER_BITS:
            extended = command.cla & CLA_EXTENDED_CHANNELS
            return _with_sw(b"", sw.LOGICAL_CHANNEL_NOT_SUPPORTED if extended else sw.CLA_NOT_SUPPORTED)
        if command.channel not in self._open:
            if not (self._lenient_channel and command.channel == IMPLICIT_CHANNEL):
                return _with_sw(b"", sw.LOGICAL_CHANNEL_NOT_SUPPORTED)
            self._open.add(IMPLICIT_CHANNEL)
        if command.ins == INS_GET_RESPONSE:  # accepted with CLA 0n and 8n
            return self._get_response(command, pending)
        if refused and refused[0] == apdu[:4] and not command.data and command.le == len(refused[1]):
            return _with_sw(refused[1], refused[2])  # the repeat after 6Cxx gets the kept answer
        data, status = self._dispatch(command)
        return self._response(command, data, status)

    # -- routing ------------------------------------------------------------------

    def _dispatch(self, command: Command) -> tuple[bytes, int]:
        interindustry = not command.cla & CLA_PROPRIETARY
        if interindustry and command.ins == INS_MANAGE_CHANNEL:
            return self._manage_channel(command)
        if interindustry and command.ins == INS_SELECT:
            return self._select(command)
        applet = self._selected.get(command.channel)
        if applet is None:  # nothing selected: this card has no file system to offer
            return b"", sw.INS_NOT_SUPPORTED
        return applet.process(command.cla, command.ins, command.p1, command.p2, command.data, command.le)

    def _manage_channel(self, command: Command) -> tuple[bytes, int]:
        if command.p1 == MANAGE_OPEN:
            return self._open_channel(command.p2)
        if command.p1 == MANAGE_CLOSE:
            return self._close_channel(command.p2)
        return b"", sw.INCORRECT_P1P2

    def _open_channel(self, requested: int) -> tuple[bytes, int]:
        if requested == 0:  # card chooses: answer the channel number
            free = [c for c in LOGICAL_CHANNELS if c not in self._open]
            if not free:
                return b"", sw.NO_FREE_CHANNEL
            self._open.add(free[0])
            return bytes((free[0],)), sw.OK
        if requested not in LOGICAL_CHANNELS:
            return b"", sw.INCORRECT_P1P2
        if requested in self._open:
            return b"", sw.NO_FREE_CHANNEL
        self._open.add(requested)
        return b"", sw.OK

    def _close_channel(self, channel: int) -> tuple[bytes, int]:
        if channel not in LOGICAL_CHANNELS:
            return b"", sw.INCORRECT_P1P2
        if channel not in self._open:
            return b"", sw.LOGICAL_CHANNEL_NOT_SUPPORTED
        self._deselect(channel)
        self._open.discard(channel)
        return b"", sw.OK

    def _select(self, command: Command) -> tuple[bytes, int]:
        if command.p1 != SELECT_BY_NAME or command.p2 not in SELECT_P2_ALLOWED:
            return b"", sw.INCORRECT_P1P2
        applet = self._applets.get(command.data)
        if applet is None:  # the previous selection stays, as on a real card
            return b"", sw.NOT_FOUND
        self._deselect(command.channel)  # re-SELECT aborts that channel's sessions
        self._selected[command.channel] = applet
        return b"", sw.OK

    def _deselect(self, channel: int) -> None:
        applet = self._selected.pop(channel, None)
        if applet is not None:
            applet.deselect(channel)

    # -- response rules (T=0 by default) ------------------------------------------

    def _response(self, command: Command, data: bytes, status: int) -> bytes:
        if not data or status not in sw.WITH_DATA:  # errors carry no data
            return _with_sw(b"", status)
        if command.data and self._t0:  # case 4: T=0 cannot send data after receiving data
            self._pending = (command.channel, data, status)
            return _with_sw(b"", sw.MORE_DATA_AVAILABLE | (len(data) & 0xFF))
        if command.le in (None, 256, len(data)) or (not self._t0 and command.le > len(data)):
            return _with_sw(data, status)  # Le 00 (or none, or exact) takes any length
        self._refused = (bytes((command.cla, command.ins, command.p1, command.p2)), data, status)
        return _with_sw(b"", sw.WRONG_LE | (len(data) & 0xFF))

    def _get_response(self, command: Command, pending: tuple[int, bytes, int] | None) -> bytes:
        if command.p1 or command.p2:
            return _with_sw(b"", sw.INCORRECT_P1P2)
        if command.data:
            return _with_sw(b"", sw.WRONG_LENGTH)
        if pending is None or pending[0] != command.channel:
            return _with_sw(b"", sw.CONDITIONS_NOT_SATISFIED)
        channel, data, final = pending
        wanted = len(data) if command.le in (None, 256) else command.le  # 00 (or none) takes it all
        if wanted > len(data):
            self._pending = pending  # the host may repeat with the right Le
            return _with_sw(b"", sw.WRONG_LE | (len(data) & 0xFF))
        if wanted < len(data):  # deliver a part; the rest stays available
            self._pending = (channel, data[wanted:], final)
            return _with_sw(data[:wanted], sw.MORE_DATA_AVAILABLE | (len(data) - wanted) & 0xFF)
        return _with_sw(data, final)
