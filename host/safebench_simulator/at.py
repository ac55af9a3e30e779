"""Vocabulary shared by the simulated modem's command handlers: replies, errors, argument parsing.

A handler gets ``(form, args)`` -- form is ``exec`` (``AT+X``), ``read`` (``AT+X?``), ``test``
(``AT+X=?``) or ``set`` (``AT+X=<args>``) -- and returns a ``Reply`` (information lines and the
final result code), or a ``Prompt`` when the command continues with raw bytes after ``> ``. It
raises ``CmeError`` for a ``+CME ERROR`` (the modem formats it as CMEE says) and ``AtError`` for a
plain ``ERROR``. Information lines are ``str`` in latin-1, so raw socket bytes fit in them losslessly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

OK, ERROR = "OK", "ERROR"

Reply = tuple[list[str], str]  # information lines, final result code

# +CME ERROR numbers (3GPP TS 27.007 9.2)
PHONE_FAILURE = 0
OPERATION_NOT_ALLOWED = 3
OPERATION_NOT_SUPPORTED = 4
SIM_NOT_INSERTED = 10
SIM_FAILURE = 13
SIM_BUSY = 14
MEMORY_FULL = 20
INVALID_INDEX = 21
NOT_FOUND = 22
NO_NETWORK_SERVICE = 30
INCORRECT_PARAMETERS = 50
UNKNOWN = 100

CME_TEXT = {
    PHONE_FAILURE: "phone failure",
    OPERATION_NOT_ALLOWED: "operation not allowed",
    OPERATION_NOT_SUPPORTED: "operation not supported",
    SIM_NOT_INSERTED: "SIM not inserted",
    SIM_FAILURE: "SIM failure",
    SIM_BUSY: "SIM busy",
    MEMORY_FULL: "memory full",
    INVALID_INDEX: "invalid index",
    NOT_FOUND: "not found",
    NO_NETWORK_SERVICE: "no network service",
    INCORRECT_PARAMETERS: "incorrect parameters",
    UNKNOWN: "unknown",
}


class CmeError(Exception):
    """Answer the command with ``+CME ERROR: <code>`` (or ``ERROR`` when CMEE is 0)."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


class AtError(Exception):
    """Answer the command with a plain ``ERROR``: unknown form, syntax the module rejects outright."""


@dataclass
class Prompt:
    """Print ``> `` and collect raw bytes: ``size`` of them, or up to Ctrl-Z when ``size`` is None.

    ``on_data`` gets the bytes and returns the reply. ESC cancels a Ctrl-Z-terminated input.
    """

    size: int | None
    on_data: Callable[[bytes], Reply]
    limit: int = 1460


Handler = Callable[[str, str], "Reply | Prompt"]


def split_args(args: str) -> list[str]:
    """Comma-separated parameters, spaces around them dropped; quotes keep their commas."""
    params, current, quoted = [], [], False
    for ch in args:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            params.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if quoted:
        raise AtError("unbalanced quotes")
    params.append("".join(current).strip())
    return params


def integer(param: str, low: int, high: int) -> int:
    """A decimal parameter within [low, high]; AtError otherwise."""
    if not param.isdigit() or len(param) > 9:
        raise AtError(f"not a number: {param!r}")
    value = int(param)
    if not low <= value <= high:
        raise AtError(f"{value} not in {low}..{high}")
    return value


def string(param: str) -> str:
    """A string parameter: quoted, or bare as many modules also accept."""
    if len(param) >= 2 and param[0] == param[-1] == '"':
        return param[1:-1]
    if '"' in param:
        raise AtError(f"malformed string: {param!r}")
    return param


def hex_bytes(text: str) -> bytes | None:
    """Bytes of an even-length hex string (either case); None if it is not one."""
    if len(text) % 2 or not all(c in "0123456789abcdefABCDEF" for c in text):
        return None
    return bytes.fromhex(text)
