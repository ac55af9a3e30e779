"""Simulated cellular modem: an AT command front end to the simulated SIM, served on a pty.

``Modem`` is the pure core: bytes from the UART in, bytes to the UART out,
with the framing of real modules (echo on by default, ``\\r`` ends a line,
``\\r\\n<line>\\r\\n`` information responses, then ``\\r\\nOK\\r\\n``). It is
unit-testable without a pty. The card image is saved atomically whenever the
applet changes it, so a killed modem never loses or corrupts the SIM.

Command line::

    python -m safebench_sim.modem --card FILE [--link PATH] [--trace FILE]

opens a pty pair, prints one JSON line ``{"port": "/dev/pts/N", "link": PATH
or null, "pid": N}`` and serves until SIGTERM/SIGINT. Exit status 2 when the
card image is missing or unreadable.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import re
import select
import signal
import sys
import time
import tty
from collections.abc import Callable
from pathlib import Path

from .card import Card
from .iotsafe import IoTSafeApplet
from .uicc import Uicc

log = logging.getLogger("safebench_sim.modem")

MAX_LINE = 1100  # characters; a full short APDU needs 10 + 522 for AT+CSIM=522,"..."
MAX_APDU = 5 + 255 + 1
IDENTIFICATION = ("safebench", "SIM-MODEM", "Revision: safebench-sim 1.0")
STARTUP_URCS = ("RDY", "+CPIN: READY")

CR, LF, BS, DEL = 0x0D, 0x0A, 0x08, 0x7F
OK, ERROR = "OK", "ERROR"
CME_OPERATION_NOT_ALLOWED = 3
CME_INCORRECT_PARAMETERS = 50
CME_TEXT = {
    CME_OPERATION_NOT_ALLOWED: "operation not allowed",
    CME_INCORRECT_PARAMETERS: "incorrect parameters",
}
CFUN_LEVELS = (0, 1, 4)

_EXTENDED = re.compile(r"\+([A-Z]+)(=\?|\?|=(.*))?", re.IGNORECASE | re.DOTALL)
_CSIM_ARGS = re.compile(r'\s*(\d+)\s*,\s*("?)([^"]*)\2\s*')

Reply = tuple[list[str], str]  # information lines, final result code


class Trace:
    """JSON-lines record of AT lines and APDUs, one object per line, flushed as written."""

    def __init__(self, path: str | os.PathLike):
        self._file = open(path, "a", encoding="utf-8")

    def write(self, direction: str, **fields: object) -> None:
        self._file.write(json.dumps({"t": time.time(), "dir": direction, **fields}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class Modem:
    """AT command interpreter in front of a UICC carrying the IoT SAFE applet."""

    def __init__(self, card_path: str | os.PathLike, *, trace_path: str | os.PathLike | None = None):
        self.card_path = Path(card_path)
        self.card = Card.load(self.card_path)
        applet = IoTSafeApplet(self.card, on_change=self._save_card)
        self.uicc = Uicc(self.card, {self.card.aid: applet})
        self.echo = True  # like real modules after power-up
        self.cmee = 0
        self.cfun = 1
        self._line = bytearray()
        self._overflow = False
        self._trace = Trace(trace_path) if trace_path else None
        self._commands: dict[str, Callable[[str, str], Reply]] = {
            "CMEE": self._cmee,
            "CPIN": self._cpin,
            "CIMI": self._cimi,
            "CCID": self._iccid("+CCID"),
            "QCCID": self._iccid("+QCCID"),
            "CICCID": self._iccid("+ICCID"),
            "CSIM": self._csim,
            "CFUN": self._cfun,
            "CSQ": self._csq,
        }

    def startup(self) -> bytes:
        """The unsolicited result codes a module prints when it has booted."""
        for urc in STARTUP_URCS:
            self._trace_write("at<", line=urc)
        return "".join(f"\r\n{urc}\r\n" for urc in STARTUP_URCS).encode()

    def feed(self, data: bytes) -> bytes:
        """Bytes received on the UART; returns the bytes to send back."""
        out = bytearray()
        for byte in data:
            if byte == LF:  # line ends are \r; a following \n is noise
                continue
            if self.echo:
                out.append(byte)
            if byte == CR:
                out += self._end_of_line()
            elif byte in (BS, DEL):
                del self._line[-1:]
            elif len(self._line) >= MAX_LINE:
                self._overflow = True
            else:
                self._line.append(byte)
        return bytes(out)

    def close(self) -> None:
        if self._trace:
            self._trace.close()

    # -- line handling ------------------------------------------------------------

    def _end_of_line(self) -> bytes:
        line, overflow = self._line.decode("latin-1").strip(), self._overflow
        self._line.clear()
        self._overflow = False
        if not line and not overflow:
            return b""
        self._trace_write("at>", line=line)
        if overflow:
            lines, result = [], ERROR
        else:
            try:
                lines, result = self._execute(line)
            except Exception:  # a simulator bug must not kill the modem: answer like a confused module
                log.exception("command failed: %r", line)
                lines, result = [], ERROR
        for text in (*lines, result):
            self._trace_write("at<", line=text)
        info = "\r\n" + "\r\n".join(lines) + "\r\n" if lines else ""
        return (info + f"\r\n{result}\r\n").encode("latin-1")

    def _execute(self, line: str) -> Reply:
        if line[:2].upper() != "AT":
            return [], ERROR
        command = line[2:]
        basic = command.upper()
        if basic == "":
            return [], OK
        if basic in ("E", "E0", "E1"):
            self.echo = basic == "E1"
            return [], OK
        if basic in ("I", "I0"):
            return list(IDENTIFICATION), OK
        match = _EXTENDED.fullmatch(command)
        handler = match and self._commands.get(match.group(1).upper())
        if not handler:
            return [], ERROR
        form = {None: "exec", "?": "read", "=?": "test"}.get(match.group(2), "set")
        return handler(form, match.group(3) or "")

    def _cme(self, code: int) -> str:
        if self.cmee == 0:
            return ERROR
        if self.cmee == 1:
            return f"+CME ERROR: {code}"
        return f"+CME ERROR: {CME_TEXT.get(code, 'unknown')}"

    # -- commands: each takes (form, arguments) with form exec/read/test/set ------

    def _cmee(self, form: str, args: str) -> Reply:
        if form == "read":
            return [f"+CMEE: {self.cmee}"], OK
        if form == "test":
            return ["+CMEE: (0-2)"], OK
        if form == "set" and args.strip() in ("0", "1", "2"):
            self.cmee = int(args)
            return [], OK
        return [], self._cme(CME_INCORRECT_PARAMETERS) if form == "set" else ERROR

    def _cpin(self, form: str, args: str) -> Reply:
        if form == "read":
            return ["+CPIN: READY"], OK
        if form == "test":
            return [], OK
        return [], self._cme(CME_OPERATION_NOT_ALLOWED)  # no PIN is set, nothing to enter

    def _cimi(self, form: str, args: str) -> Reply:
        if form == "exec":
            return [self.card.imsi], OK
        return [], OK if form == "test" else ERROR

    def _iccid(self, prefix: str) -> Callable[[str, str], Reply]:
        def handler(form: str, args: str) -> Reply:
            if form in ("exec", "read"):
                return [f"{prefix}: {self.card.iccid}"], OK
            return [], OK if form == "test" else ERROR

        return handler

    def _csim(self, form: str, args: str) -> Reply:
        if form == "test":
            return [], OK
        if form != "set":
            return [], ERROR
        apdu = _parse_csim(args)
        if apdu is None:
            return [], self._cme(CME_INCORRECT_PARAMETERS)
        response = self._transmit(apdu).hex().upper()
        return [f'+CSIM: {len(response)},"{response}"'], OK

    def _cfun(self, form: str, args: str) -> Reply:
        if form == "read":
            return [f"+CFUN: {self.cfun}"], OK
        if form == "test":
            return ["+CFUN: (0,1,4),(0-1)"], OK
        if form == "set":
            level, _, reset = args.partition(",")
            if level.strip() in map(str, CFUN_LEVELS) and reset.strip() in ("", "0", "1"):
                self.cfun = int(level)  # only remembered: the SIM stays reachable, as in airplane mode
                return [], OK
            return [], self._cme(CME_INCORRECT_PARAMETERS)
        return [], ERROR

    def _csq(self, form: str, args: str) -> Reply:
        if form == "exec":
            return ["+CSQ: 99,99"], OK  # no radio is simulated: signal "not known or not detectable"
        return (["+CSQ: (0-31,99),(99)"], OK) if form == "test" else ([], ERROR)

    # -- card access --------------------------------------------------------------

    def _transmit(self, apdu: bytes) -> bytes:
        channel = apdu[0] & 0x03
        self._trace_write("apdu>", ch=channel, hex=apdu.hex().upper())
        response = self.uicc.transmit(apdu)
        self._trace_write("apdu<", ch=channel, hex=response.hex().upper())
        return response

    def _save_card(self) -> None:
        self.card.save(self.card_path)

    def _trace_write(self, direction: str, **fields: object) -> None:
        if self._trace:
            self._trace.write(direction, **fields)


def _parse_csim(args: str) -> bytes | None:
    """APDU bytes of ``<length>,"<hex>"`` (length counts hex characters); None if malformed."""
    match = _CSIM_ARGS.fullmatch(args)
    if match is None:
        return None
    length, text = int(match.group(1)), match.group(3)
    if length != len(text) or length % 2 or not re.fullmatch(r"[0-9A-Fa-f]*", text):
        return None
    if not 4 <= length // 2 <= MAX_APDU:
        return None
    return bytes.fromhex(text)


# -- pty front end ----------------------------------------------------------------


class _Stop(Exception):
    """Raised by the signal handlers to leave the serve loop through its cleanup."""


def _stop(signum: int, frame: object) -> None:
    raise _Stop(signum)


def serve(modem: Modem, master_fd: int) -> None:
    """Shuttle bytes between the pty master and the modem until interrupted."""
    os.set_blocking(master_fd, False)  # a client that stops reading must not block us
    pending = bytearray(modem.startup())
    while True:
        readable, writable, _ = select.select([master_fd], [master_fd] if pending else [], [])
        if readable:
            try:
                pending += modem.feed(os.read(master_fd, 4096))
            except BlockingIOError:
                pass
            except OSError as e:
                if e.errno != errno.EIO:  # EIO: no slave open; we hold one, but be safe
                    raise
                time.sleep(0.05)
        if writable and pending:
            try:
                del pending[:os.write(master_fd, pending)]
            except BlockingIOError:
                pass


def _make_link(link: Path, target: str) -> None:
    """Point ``link`` at ``target``, replacing an old symlink atomically; never a real file."""
    if os.path.lexists(link) and not link.is_symlink():
        raise FileExistsError(f"{link} exists and is not a symlink")
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    os.symlink(target, tmp)
    os.replace(tmp, link)


def _remove_link(link: Path, target: str) -> None:
    if link.is_symlink() and os.readlink(link) == target:  # leave a link someone else re-pointed
        link.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m safebench_sim.modem", description=__doc__.split("\n")[0])
    parser.add_argument("--card", required=True, help="card image (JSON) of the simulated SIM")
    parser.add_argument("--link", help="symlink to create to the modem's pty")
    parser.add_argument("--trace", help="append a JSON-lines trace of AT lines and APDUs to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level to stderr")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="safebench_sim.modem: %(levelname)s %(message)s")

    if not os.path.isfile(args.card):
        print(f"safebench_sim.modem: card image not found: {args.card}", file=sys.stderr)
        return 2
    try:
        modem = Modem(args.card, trace_path=args.trace)
    except (OSError, ValueError) as e:
        print(f"safebench_sim.modem: cannot load card image: {e}", file=sys.stderr)
        return 2

    master_fd, slave_fd = os.openpty()  # we keep slave_fd open: clients may close and reopen the port
    tty.setraw(slave_fd)
    port = os.ttyname(slave_fd)
    link = Path(args.link).absolute() if args.link else None
    try:
        if link:
            _make_link(link, port)
    except OSError as e:
        print(f"safebench_sim.modem: cannot create link: {e}", file=sys.stderr)
        modem.close()
        return 2

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        print(json.dumps({"port": port, "link": str(link) if link else None, "pid": os.getpid()}), flush=True)
        serve(modem, master_fd)
    except _Stop:
        log.info("stopping")
    finally:
        if link:
            _remove_link(link, port)
        modem.close()
        os.close(master_fd)
        os.close(slave_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
