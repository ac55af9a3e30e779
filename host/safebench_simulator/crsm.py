"""Restricted SIM access (AT+CRSM, 3GPP TS 27.007 8.18) to the elementary files a modem reads itself.

AT+CRSM reaches the card's file system on the basic channel, not an applet. The simulated card
has no file system of its own, so the two transparent EFs hosts read this way are derived from
the card image: EF_ICCID (2FE2, 10 bytes of nibble-swapped BCD padded with F, TS 102 221
13.2) and EF_IMSI (6F07, length byte, then parity nibble and digits nibble-swapped, TS 31.102
4.2.2). Both are read-only. Status words come back as decimal SW1, SW2 (144,0 = 9000).
"""

from __future__ import annotations

from .card import Card

READ_BINARY, READ_RECORD, GET_RESPONSE, UPDATE_BINARY, UPDATE_RECORD, STATUS = 176, 178, 192, 214, 220, 242
COMMANDS = (READ_BINARY, READ_RECORD, GET_RESPONSE, UPDATE_BINARY, UPDATE_RECORD, STATUS)
NEEDS_FILE = (READ_BINARY, READ_RECORD, GET_RESPONSE, UPDATE_BINARY, UPDATE_RECORD)
EF_ICCID, EF_IMSI = 0x2FE2, 0x6F07

SW_OK = (0x90, 0x00)
SW_WRONG_LE = 0x6C  # | bytes available
SW_WRONG_OFFSET = (0x6B, 0x00)
SW_NOT_FOUND = (0x6A, 0x82)
SW_INCOMPATIBLE_STRUCTURE = (0x69, 0x81)
SW_SECURITY_NOT_SATISFIED = (0x69, 0x82)
SW_INS_NOT_SUPPORTED = (0x6D, 0x00)


def swapped_bcd(digits: str) -> bytes:
    """Digits two per byte, the first in the low nibble; an odd count is padded with F."""
    if len(digits) % 2:
        digits += "F"
    return bytes.fromhex("".join(digits[i + 1] + digits[i] for i in range(0, len(digits), 2)))


def ef_iccid(iccid: str) -> bytes:
    return swapped_bcd(iccid.ljust(20, "F"))


def ef_imsi(imsi: str) -> bytes:
    parity = "9" if len(imsi) % 2 else "1"  # 1001: odd number of digits, 0001: even
    body = swapped_bcd(parity + imsi)
    return bytes((len(body),)) + body


def _files(card: Card) -> dict[int, bytes]:
    return {EF_ICCID: ef_iccid(card.iccid), EF_IMSI: ef_imsi(card.imsi)}


def _fcp(file_id: int, size: int) -> bytes:
    """FCP template of a transparent working EF: descriptor, identifier, size, life cycle."""
    body = (bytes.fromhex("82024121") + b"\x83\x02" + file_id.to_bytes(2, "big")
            + b"\x80\x02" + size.to_bytes(2, "big") + bytes.fromhex("8A0105"))
    return b"\x62" + bytes((len(body),)) + body


def access(card: Card, command: int, file_id: int | None, p1: int, p2: int, p3: int | None) -> tuple[int, int, bytes]:
    """(SW1, SW2, response data) of one restricted-access command."""
    if command == STATUS:
        return (*SW_OK, b"")
    if command not in NEEDS_FILE:
        return (*SW_INS_NOT_SUPPORTED, b"")
    content = _files(card).get(file_id)
    if content is None:
        return (*SW_NOT_FOUND, b"")
    if command == GET_RESPONSE:
        return (*SW_OK, _fcp(file_id, len(content)))
    if command in (READ_RECORD, UPDATE_RECORD):
        return (*SW_INCOMPATIBLE_STRUCTURE, b"")  # both files are transparent
    if command == UPDATE_BINARY:
        return (*SW_SECURITY_NOT_SATISFIED, b"")  # ICCID and IMSI are never updatable from the terminal
    offset = p1 << 8 | p2
    if offset >= len(content):
        return (*SW_WRONG_OFFSET, b"")
    rest = content[offset:]
    if p3 is None or p3 == 0:  # no (or a zero) length: the whole rest, as modems do for CRSM
        return (*SW_OK, rest)
    if p3 > len(rest):
        return (SW_WRONG_LE, len(rest), b"")
    return (*SW_OK, rest[:p3])
