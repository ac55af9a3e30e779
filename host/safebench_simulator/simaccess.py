"""SIM access commands of the simulated modem: +CSIM, +CCHO/+CGLA/+CCHC and +CRSM (3GPP TS 27.007 8.17-8.46).

``SimAccess`` turns these commands into APDUs for the card and words the answers in the
module's ``ReplyStyle``. It owns the +CCHO sessions: ``AT+CCHO`` opens a logical channel
(MANAGE CHANNEL) and selects the AID on it, ``AT+CGLA`` puts the session's channel into the CLA
(the host sends channel bits 0), ``AT+CCHC`` closes it. Session ids count up from 1 per boot, so
they are not the channel numbers. Errors follow what modems and Android's modem simulator
answer: 20 no channel free, 21 unknown session, 22 AID not found, 50 malformed parameters.
The modem supplies ``transmit`` (tracing and card faults) and ``check`` (SIM present, not busy).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from . import at, crsm
from .at import OK, AtError, CmeError, Reply, integer, split_args, string
from .card import Card

MAX_APDU = 5 + 255 + 1
OPEN_CHANNEL = bytes.fromhex("0070000001")

_CSIM_ARGS = re.compile(r'\s*(\d{1,6})\s*,\s*("?)([^"]*)\2\s*')
_CGLA_ARGS = re.compile(r'\s*(\d{1,9})\s*,\s*(\d{1,6})\s*,\s*("?)([^"]*)\3\s*')


@dataclass(frozen=True)
class ReplyStyle:
    """How this module words SIM-access answers, and the longest AT line it takes."""

    quoted_hex: bool = True
    space_after_colon: bool = True
    ccho_prefix: bool = True
    max_line: int = 1100  # characters; a full short APDU needs 10 + 522 for AT+CSIM=522,"..."

    def __post_init__(self) -> None:
        flags = (self.quoted_hex, self.space_after_colon, self.ccho_prefix)
        if not all(isinstance(f, bool) for f in flags):
            raise ValueError("quoted_hex, space_after_colon and ccho_prefix must be true or false")
        if isinstance(self.max_line, bool) or not isinstance(self.max_line, int) or not 16 <= self.max_line <= 65536:
            raise ValueError(f"max_line must be an integer in 16..65536, not {self.max_line!r}")

    def info(self, name: str, value: str) -> str:
        return f"+{name}:{' ' if self.space_after_colon else ''}{value}"

    def hex(self, data: bytes) -> str:
        text = data.hex().upper()
        return f'"{text}"' if self.quoted_hex else text


def _close_channel(channel: int) -> bytes:
    return bytes((0x00, 0x70, 0x80, channel, 0x00))


class SimAccess:
    def __init__(self, style: ReplyStyle, transmit: Callable[[bytes], bytes], card: Callable[[], Card],
                 check: Callable[[], None]):
        self.style = style
        self._transmit, self._card, self._check = transmit, card, check
        self.sessions: dict[int, int] = {}  # +CCHO session id -> logical channel
        self._next_session = 1

    def commands(self) -> dict[str, at.Handler]:
        return {"CSIM": self._csim, "CCHO": self._ccho, "CGLA": self._cgla, "CCHC": self._cchc,
                "CRSM": self._crsm}

    def reset(self, boot: bool = False) -> None:
        """The card reset: every session is gone. After a boot the ids start again from 1."""
        self.sessions.clear()
        if boot:
            self._next_session = 1

    def _csim(self, form: str, args: str) -> Reply:
        if _is_test(form):
            return [], OK
        apdu = _parse_apdu(_CSIM_ARGS.fullmatch(args), 1)
        self._check()
        response = self._transmit(apdu)
        return [self.style.info("CSIM", f"{len(response) * 2},{self.style.hex(response)}")], OK

    def _ccho(self, form: str, args: str) -> Reply:
        if _is_test(form):
            return [], OK
        aid = at.hex_bytes(string(args.strip()))
        if aid is None or not 5 <= len(aid) <= 16:
            raise CmeError(at.INCORRECT_PARAMETERS)
        self._check()
        opened = self._transmit(OPEN_CHANNEL)
        if len(opened) != 3 or opened[1:] != b"\x90\x00":
            raise CmeError(at.MEMORY_FULL)  # no channel left
        channel = opened[0]
        selected = self._transmit(bytes((channel, 0xA4, 0x04, 0x00, len(aid))) + aid)
        if selected[-2:] != b"\x90\x00" and selected[-2] != 0x61:
            self._transmit(_close_channel(channel))
            raise CmeError(at.NOT_FOUND)
        session = self._next_session
        self._next_session += 1
        self.sessions[session] = channel
        return [self.style.info("CCHO", str(session)) if self.style.ccho_prefix else str(session)], OK

    def _cgla(self, form: str, args: str) -> Reply:
        if _is_test(form):
            return [], OK
        match = _CGLA_ARGS.fullmatch(args)
        apdu = bytearray(_parse_apdu(match, 2))
        self._check()
        channel = self.sessions.get(int(match.group(1)))
        if channel is None:
            raise CmeError(at.INVALID_INDEX)
        if apdu[1] == 0x70 and not apdu[0] & 0x80:  # MANAGE CHANNEL is the modem's business here
            raise CmeError(at.OPERATION_NOT_ALLOWED)
        apdu[0] = (apdu[0] & 0xFC) | channel  # the host sends channel bits 0; the modem fills them
        response = self._transmit(bytes(apdu))
        return [self.style.info("CGLA", f"{len(response) * 2},{self.style.hex(response)}")], OK

    def _cchc(self, form: str, args: str) -> Reply:
        if _is_test(form):
            return [], OK
        if not args.strip().isdigit() or len(args.strip()) > 9:
            raise CmeError(at.INCORRECT_PARAMETERS)
        self._check()
        channel = self.sessions.pop(int(args), None)
        if channel is None:
            raise CmeError(at.INVALID_INDEX)
        self._transmit(_close_channel(channel))
        return [], OK

    def _crsm(self, form: str, args: str) -> Reply:
        if _is_test(form):
            return [], OK
        try:  # <command>[,<fileid>[,<P1>,<P2>,<P3>[,<data>[,<pathid>]]]]
            params = split_args(args)
            if len(params) > 7:
                raise AtError("too many parameters")
            params += [""] * (5 - len(params))
            command = integer(params[0], 0, 255)
            file_id = integer(params[1], 0, 65535) if params[1] else None
            p1, p2, p3 = (integer(p, 0, 255) if p else None for p in params[2:5])
        except AtError:
            raise CmeError(at.INCORRECT_PARAMETERS) from None
        if command not in crsm.COMMANDS or (command in crsm.NEEDS_FILE and file_id is None):
            raise CmeError(at.INCORRECT_PARAMETERS)
        self._check()
        sw1, sw2, data = crsm.access(self._card(), command, file_id, p1 or 0, p2 or 0, p3)
        value = f'{sw1},{sw2},"{data.hex().upper()}"' if data else f"{sw1},{sw2}"
        return [self.style.info("CRSM", value)], OK


def _is_test(form: str) -> bool:
    """True for the test form (a bare OK); AtError for forms other than set."""
    if form not in ("test", "set"):
        raise AtError(form)
    return form == "test"


def _parse_apdu(match: re.Match | None, group: int) -> bytes:
    """APDU bytes of ``<length>,"<hex>"`` (length counts hex characters); CmeError 50 if malformed."""
    if match is None:
        raise CmeError(at.INCORRECT_PARAMETERS)
    length, text = int(match.group(group)), match.group(group + 2)
    apdu = at.hex_bytes(text)
    if apdu is None or length != len(text) or not 4 <= len(apdu) <= MAX_APDU:
        raise CmeError(at.INCORRECT_PARAMETERS)
    return apdu
