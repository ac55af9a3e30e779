"""Simulated cellular modem: an AT command front end to the simulated SIM, served on a pty.

``Modem`` is the pure core: bytes from the UART in, bytes to the UART out, with the framing of
real modules (echo on after power-up, ``\\r`` ends a line, ``\\r\\n<line>\\r\\n`` information
responses, then ``\\r\\nOK\\r\\n``). It is unit-testable without a pty: ``feed(bytes) -> bytes``;
``receive`` gives the same output as timed chunks (fault delays, ``realtime`` pacing) and
``poll`` what happened on its TCP sockets and fault controls meanwhile. A ``> `` prompt switches
``feed`` into a byte-counting data state, so raw socket payloads never pass the line parser.

Commands: ``AT``, ``ATE0/1``, ``ATI``, ``AT+CGMI/CGMM/CGMR/CGSN``, ``AT+CMEE``, ``AT+CFUN``
(``=1,1`` reboots), ``AT+CPIN?``, ``AT+CIMI``, the dialect's ICCID spellings, ``AT+CCLK`` (the
host's UTC time, as network time), ``AT+CSQ``, ``AT+CEREG``, ``AT+CREG``; SIM access (``AT+CSIM``,
``AT+CCHO/CGLA/CCHC``, ``AT+CRSM``: ``simaccess``), APN settings (``AT+CGDCONT`` and the dialect's
own: ``pdp``) and the dialect's TCP commands (``sockets``, ``dialects``). Unknown commands answer ``ERROR``; malformed SIM commands ``+CME ERROR: 50`` (or
``ERROR`` with CMEE=0); a line longer than ``max_line`` ``ERROR``.

Reply style (``quoted_hex``, ``space_after_colon`` of ``+CSIM/+CGLA/+CCHO/+CRSM``, ``ccho_prefix``,
``max_line``) and the timing model default to the card profile's ``modem`` and ``timing``
sections. Every APDU's trace record carries ``model_ms``: the UART time of the command and its
answer at the profile's baud rate plus the card latency of its INS (``timing``).

Faults (``faults``) come from a control socket; ``link`` serves the modem on its port. The card
image is saved atomically whenever the applet changes it, so a killed modem never loses or
corrupts the SIM.

Simplifications: CFUN=0/4 keep the SIM reachable (airplane mode) and only deregister; the
network registers at once ("registered, home") with CFUN=1 and a SIM, unless fault control says
otherwise (``register``); a command's reply is computed at once (``realtime`` and faults only
delay sending it), and replies go out in the order of the commands, as a module's do.

Command line::

    python -m safebench_simulator.modem --card FILE [--dialect generic|quectel|simcom] [--link PATH]
        [--trace FILE] [--control PATH] [--realtime] [--port /dev/ttyUSBx [--baud N]] [--print json|port]

serves the modem on a new pty (or, with ``--port``, on a real serial port opened raw) and prints
one JSON line ``{"port": "/dev/pts/N", "link": PATH or null, "pid": N, "control": PATH or null,
"dialect": NAME}`` (``--print port``: just the port). The control socket defaults to
``<link>.ctl`` when ``--link`` is given (none, with a warning, when that path is too long for a
Unix socket). It serves until SIGTERM/SIGINT. Exit status 2 when the
card image is missing or unreadable, or the port, link or control socket cannot be set up.
"""

from __future__ import annotations

import argparse
import calendar
import json
import logging
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import at, link
from .at import ERROR, OK, AtError, CmeError, Prompt, Reply, string
from .card import Card
from .dialects import IMEI, Dialect
from .dialects import dialect as find_dialect
from .faults import ControlServer, FaultPlan
from .faults import handle as handle_control
from .iotsafe import IoTSafeApplet
from .modem_options import add_arguments
from .pdp import PdpSettings
from .simaccess import ReplyStyle, SimAccess
from .timing import TimingModel
from .uicc import Uicc

log = logging.getLogger("safebench_simulator.modem")

MAX_UNIX_PATH = 107  # bytes of an AF_UNIX socket path (sun_path holds 108 with the NUL)
CR, LF, BS, DEL, CTRL_Z, ESC = 0x0D, 0x0A, 0x08, 0x7F, 0x1A, 0x1B
PROMPT = b"\r\n> "
CFUN_LEVELS = (0, 1, 4)
CEREG_NOT_REGISTERED, CEREG_HOME, CEREG_ROAMING = 0, 1, 5
REGISTRATION_STATS = range(0, 6)  # 27.007 <stat>: 0 not searching, 1 home, 2 searching, 3 denied, 4 unknown, 5 roaming
CSQ_REGISTERED = "+CSQ: 24,99"  # about -65 dBm; 99,99 (unknown) when not registered
CELL = '"0001","01A2D001",7'  # TAC, cell id, access technology (7: E-UTRAN) for CEREG=2
GSM_CELL = '"0001","01A2",0'  # LAC, cell id, access technology (0: GSM) for CREG=2

_EXTENDED = re.compile(r"\+([A-Z]+)(=\?|\?|=(.*))?", re.IGNORECASE | re.DOTALL)
_CCLK = re.compile(r"(\d\d)/(\d\d)/(\d\d),(\d\d):(\d\d):(\d\d)([+-]\d\d)")

Chunks = list[tuple[float, bytes]]  # (seconds to wait before sending, bytes)


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

    def __init__(self, card_path: str | os.PathLike, *, trace_path: str | os.PathLike | None = None,
                 dialect: str = "generic", quoted_hex: bool | None = None, space_after_colon: bool | None = None,
                 ccho_prefix: bool | None = None, max_line: int | None = None, baud: int | None = None,
                 realtime: bool = False, connect: Callable = socket.create_connection,
                 clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time,
                 fault_seed: int | None = None):
        self.card_path = Path(card_path)
        self.dialect: Dialect = find_dialect(dialect)
        self._load_card()
        profile = getattr(self.card, "profile", None) or {}
        given = {"quoted_hex": quoted_hex, "space_after_colon": space_after_colon, "ccho_prefix": ccho_prefix,
                 "max_line": max_line}
        defaults = {k: v for k, v in (profile.get("modem") or {}).items() if k in given}
        self.style = ReplyStyle(**{**defaults, **{k: v for k, v in given.items() if v is not None}})
        self.timing = TimingModel.from_profile(profile, baud)
        self.realtime = realtime
        self.faults = FaultPlan(fault_seed)
        self._now, self._wall = clock, wall_clock
        self._trace = Trace(trace_path) if trace_path else None
        self.sockets = (self.dialect.sockets(self._urc, self.registered, connect)
                        if self.dialect.sockets else None)
        self.sim = SimAccess(self.style, self._transmit, lambda: self.card, self._sim)
        self.pdp = PdpSettings()
        self.refused: tuple[str, ...] = ()  # command lines answered ERROR, as by a module without them
        self._network: tuple[int, float | None] | None = None  # (stat, until) set by fault control
        self._commands: dict[str, at.Handler] = {
            **self.sim.commands(), **self.pdp.commands(self.dialect.pdp),
            "CMEE": self._cmee, "CPIN": self._cpin, "CIMI": self._cimi, "CFUN": self._cfun, "CSQ": self._csq,
            "CEREG": self._registration("CEREG", CELL), "CREG": self._registration("CREG", GSM_CELL),
            "CCLK": self._cclk,
            "CGMI": self._fixed(self.dialect.manufacturer), "CGMM": self._fixed(self.dialect.model),
            "CGMR": self._fixed(self.dialect.revision), "CGSN": self._fixed(IMEI),
            **{command: self._iccid(prefix) for command, prefix in self.dialect.iccid.items()},
            **(self.sockets.commands() if self.sockets else {}),
        }
        self.sim_present = True
        self._out: Chunks = []
        self._power_on()

    def _power_on(self) -> None:
        """The state of a module that has just booted."""
        self.echo = True
        self.cmee = 0
        self.cfun = 1
        self.urc_modes = {"CEREG": 0, "CREG": 0}  # registration URC modes
        self.sim.reset(boot=True)
        self._line = bytearray()
        self._overflow = False
        self._prompt: Prompt | None = None
        self._data = bytearray()
        self._busy_until = 0.0
        self._off_until = 0.0
        self._card_reset_armed = False
        self._clock_offset = 0.0  # AT+CCLK= sets the RTC relative to the host clock
        self._zone = 0  # quarter hours
        self._in_command = False
        self._deferred: list[Callable[[], None]] = []  # URCs and actions held until the reply is out
        self._held: Chunks = []  # a reply the hold fault keeps until the board sends again
        self._apdus: list[dict] = []  # APDUs of the command being run, for the trace's time model
        self._in_bytes = 0
        self._registered = self.registered()
        self.faults.clear()

    # -- UART side ----------------------------------------------------------------

    def startup(self) -> bytes:
        """The unsolicited result codes a module prints when it has booted."""
        urcs = [u for u in self.dialect.startup if self.sim_present or u != "+CPIN: READY"]
        for urc in urcs:
            self._trace_write("at<", line=urc)
        return "".join(f"\r\n{urc}\r\n" for urc in urcs).encode()

    def feed(self, data: bytes) -> bytes:
        """Bytes received on the UART; returns the bytes to send back (timing ignored)."""
        return b"".join(chunk for _, chunk in self.receive(data))

    def receive(self, data: bytes) -> Chunks:
        """Bytes received on the UART; returns what to send back as timed chunks."""
        if self._now() < self._off_until:  # still booting: the UART is not listening
            return self._take_output()
        held, self._held = self._held, []
        for delay, chunk in held:
            self._emit(chunk, delay)
        i = 0
        while i < len(data):
            if self._prompt is not None:
                i += self._take_data(memoryview(data)[i:])
                continue
            self._command_byte(data[i])
            i += 1
        return self._take_output()

    def poll(self) -> Chunks:
        """URCs of socket events, and output of control actions, since the last call."""
        if self.sockets:
            self.sockets.poll()
        return self._take_output()

    def waiting_sockets(self) -> list:
        """Objects with fileno() to select() on for incoming socket data."""
        return self.sockets.waiting() if self.sockets else []

    def close(self) -> None:
        if self.sockets:
            self.sockets.reset()
        if self._trace:
            self._trace.close()

    # -- state the network and the faults see ---------------------------------------

    def registration(self) -> int:
        """The 27.007 <stat>: home with the radio on and a SIM, unless fault control set the network otherwise."""
        if not (self.cfun == 1 and self.sim_present):
            return CEREG_NOT_REGISTERED
        if self._network and (self._network[1] is None or self._now() < self._network[1]):
            return self._network[0]
        return CEREG_HOME

    def registered(self) -> bool:
        return self.registration() in (CEREG_HOME, CEREG_ROAMING)

    def set_registration(self, stat: int, ms: int = 0) -> None:
        """The network reports ``stat`` (for ``ms``, then home again; 0: until told otherwise)."""
        self._network = (stat, self._now() + ms / 1000 if ms else None)
        self._registration_changed()

    def refuse(self, commands: list[str]) -> None:
        """Answer these command lines ``ERROR`` from now on (``AT+CMEE`` refuses every AT+CMEE line)."""
        self.refused = tuple(c.strip().upper() for c in commands)

    def remove_sim(self) -> None:
        self.sim_present = False
        self._reset_card()
        self._urc("+CPIN: NOT READY")
        self._registration_changed()

    def insert_sim(self) -> None:
        """The card is put back; its image is read again (a test may have swapped the file)."""
        self._load_card()
        self.sim_present = True
        self._urc("+CPIN: READY")
        self._registration_changed()

    def switch_operator(self, iccid: str | None = None) -> str:
        """An eSIM operator profile switch (the card's other profile enabled: ICCID and IMSI change, the IoT
        SAFE applet does not). The card then resets, as after a REFRESH: channels are lost, the modem reads
        the new identity, the network registers again."""
        new = self.card.switch_operator(iccid)
        self._save_card()
        self._reset_card()
        self._urc("+CPIN: NOT READY")
        self._urc("+CPIN: READY")
        self._registration_changed()
        return new

    def sim_busy(self, ms: int) -> None:
        self._busy_until = self._now() + ms / 1000

    def arm_card_reset(self) -> None:
        self._card_reset_armed = True

    def network_drop(self, conn_id: int | None = None) -> list[int]:
        return self.sockets.network_drop(conn_id) if self.sockets else []

    def reboot(self, boot_ms: int = 0) -> None:
        """Restart: all state lost, sockets gone, start-up URCs after ``boot_ms``."""
        if self.sockets:
            self.sockets.reset()
        self.uicc.reset()
        self._power_on()
        self._off_until = self._now() + boot_ms / 1000
        self._trace_write("reboot", boot_ms=boot_ms)
        self._out.append((boot_ms / 1000, self.startup()))

    def clear_faults(self) -> None:
        self.faults.clear()
        self._busy_until = 0.0
        self._card_reset_armed = False
        self.refused = ()
        self._network = None
        self._registration_changed()

    def status(self) -> dict:
        return {
            "dialect": self.dialect.name, "echo": self.echo, "cmee": self.cmee, "cfun": self.cfun,
            "sim": "present" if self.sim_present else "removed", "iccid": self.card.iccid,
            "sim_busy_ms": max(0, round((self._busy_until - self._now()) * 1000)),
            "registered": self.registered(), "registration": self.registration(), "refused": list(self.refused),
            "pdp": self.pdp.status(), "sessions": {str(k): v for k, v in self.sessions.items()},
            "card_reset_armed": self._card_reset_armed, "pending": self.faults.pending(),
            "sockets": self.sockets.status() if self.sockets else None,
        }

    # -- line handling ------------------------------------------------------------

    def _command_byte(self, byte: int) -> None:
        if byte == LF or byte in (CTRL_Z, ESC):  # \n after \r is noise; so is a stray data terminator
            return
        if self.echo:
            self._emit(bytes((byte,)))
        if byte == CR:
            self._end_of_line()
        elif byte in (BS, DEL):
            del self._line[-1:]
        elif len(self._line) >= self.style.max_line:
            self._overflow = True
        else:
            self._line.append(byte)

    def _end_of_line(self) -> None:
        raw, overflow = bytes(self._line), self._overflow
        line = raw.decode("latin-1").strip(" \t")
        self._line.clear()
        self._overflow = False
        if not line and not overflow:
            return
        self._trace_write("at>", line=line)
        self._in_bytes = (len(raw) + 1) * (2 if self.echo else 1)  # the line, and its echo
        self._in_command = True
        try:
            code = self.faults.take_cme()
            if overflow:
                reply = [], ERROR
            elif code is not None:
                self._trace_write("fault", kind="cme", code=code)
                reply = [], self._cme(code)
            elif self._refuses(line):
                self._trace_write("fault", kind="refuse", line=line)
                reply = [], ERROR
            else:
                reply = self._run(lambda: self._execute(line))
        finally:
            self._in_command = False
        if isinstance(reply, Prompt):
            self._prompt = reply
            self._trace_write("at<", line="> ")
            self._emit(PROMPT)
        else:
            self._finish(reply)

    def _refuses(self, line: str) -> bool:
        upper = line.upper()
        return any(upper == c or (upper.startswith(c) and upper[len(c):len(c) + 1] in ("=", "?")) for c in self.refused)

    def _take_data(self, view: memoryview) -> int:
        """Bytes of a ``> `` prompt's input; returns how many of ``view`` it took."""
        prompt = self._prompt
        if prompt.size is not None:
            n = min(len(view), prompt.size - len(self._data))
            self._data += view[:n]
            if len(self._data) == prompt.size:
                self._end_of_data()
            return n
        for k, byte in enumerate(view):
            if byte == CTRL_Z:
                self._end_of_data()
                return k + 1
            if byte == ESC:  # cancelled: nothing is sent
                self._prompt, self._data = None, bytearray()
                self._trace_write("data>", cancelled=True)
                self._finish(([], OK))
                return k + 1
            if len(self._data) >= prompt.limit:
                self._prompt, self._data = None, bytearray()
                self._finish(([], ERROR))
                return k
            self._data.append(byte)
        return len(view)

    def _end_of_data(self) -> None:
        prompt, data = self._prompt, bytes(self._data)
        self._prompt, self._data = None, bytearray()
        self._trace_write("data>", len=len(data), hex=data.hex().upper())
        self._in_bytes = len(PROMPT) + len(data)
        self._in_command = True
        try:
            reply = self._run(lambda: prompt.on_data(data))
        finally:
            self._in_command = False
        self._finish(reply if isinstance(reply, tuple) else ([], ERROR))

    def _run(self, command: Callable[[], Reply | Prompt]) -> Reply | Prompt:
        try:
            return command()
        except CmeError as e:
            return [], self._cme(e.code)
        except AtError:
            return [], ERROR
        except Exception:  # a simulator bug must not kill the modem: answer like a confused module
            log.exception("command failed")
            return [], ERROR

    def _finish(self, reply: Reply) -> None:
        """Send a command's reply (through the armed faults), then what was held back for it."""
        lines, result = reply
        info = "\r\n" + "\r\n".join(lines) + "\r\n" if lines else ""
        raw = (info + f"\r\n{result}\r\n").encode("latin-1")
        model_ms = self._model(len(raw))
        for text in (*lines, result):
            self._trace_write("at<", line=text)
        pending = self.faults.pending()
        pending.pop("cme", None)
        if pending:
            self._trace_write("fault", **pending)
        hold = self.faults.hold
        chunks = self.faults.shape(raw, model_ms / 1000 if self.realtime else 0.0)
        if hold:
            self._held = chunks
            chunks = []
        for delay, chunk in chunks:
            self._emit(chunk, delay)
        deferred, self._deferred = self._deferred, []
        for action in deferred:
            action()

    def _model(self, reply_bytes: int) -> float:
        """Modeled milliseconds of this command; writes the trace records of its APDUs."""
        uart = self.timing.uart_ms(self._in_bytes + reply_bytes)
        card = 0.0
        for k, apdu in enumerate(self._apdus):
            card_ms = apdu.pop("card_ms")
            uart_ms = uart if k == len(self._apdus) - 1 else 0.0  # the UART time goes to the last one
            card += card_ms
            self._trace_write("apdu<", **apdu, card_ms=card_ms, uart_ms=round(uart_ms, 3),
                              model_ms=round(card_ms + uart_ms, 3))
        self._apdus.clear()
        return uart + card

    def _emit(self, data: bytes, delay: float = 0.0) -> None:
        if self._out and delay == 0.0:
            self._out[-1] = (self._out[-1][0], self._out[-1][1] + data)
        else:
            self._out.append((delay, data))

    def _take_output(self) -> Chunks:
        out, self._out = self._out, []
        return out

    def _urc(self, text: str) -> None:
        """An unsolicited line; one raised during a command follows that command's reply."""
        def send() -> None:
            self._trace_write("at<", line=text)
            self._emit(f"\r\n{text}\r\n".encode("latin-1"))

        if self._in_command or self._prompt is not None:
            self._deferred.append(send)
        else:
            send()

    def _execute(self, line: str) -> Reply | Prompt:
        if line[:2].upper() != "AT":
            raise AtError(line)
        command = line[2:]
        basic = command.upper()
        if basic == "":
            return [], OK
        if basic in ("E", "E0", "E1"):
            self.echo = basic == "E1"
            return [], OK
        if basic in ("I", "I0"):
            return list(self.dialect.identification), OK
        match = _EXTENDED.fullmatch(command)
        handler = match and self._commands.get(match.group(1).upper())
        if not handler:
            raise AtError(line)
        form = {None: "exec", "?": "read", "=?": "test"}.get(match.group(2), "set")
        return handler(form, match.group(3) or "")

    def _cme(self, code: int) -> str:
        if self.cmee == 0:
            return ERROR
        if self.cmee == 1:
            return f"+CME ERROR: {code}"
        return f"+CME ERROR: {at.CME_TEXT.get(code, 'unknown')}"

    # -- SIM state ----------------------------------------------------------------

    def _load_card(self) -> None:
        card = Card.load(self.card_path)
        applet = IoTSafeApplet(card, on_change=self._save_card)
        # realtime=False: the modem paces its replies itself (see timing), never by sleeping in the card
        self.card, self.uicc = card, Uicc(card, {card.aid: applet}, realtime=False)

    def _save_card(self) -> None:
        self.card.save(self.card_path)

    @property
    def sessions(self) -> dict[int, int]:
        """+CCHO session id -> logical channel."""
        return self.sim.sessions

    def _reset_card(self) -> None:
        self.uicc.reset()
        self.sim.reset()

    def _sim(self) -> None:
        """Raise the error a SIM command gets when the SIM cannot be reached."""
        if not self.sim_present:
            raise CmeError(at.SIM_NOT_INSERTED)
        if self._now() < self._busy_until:
            raise CmeError(at.SIM_BUSY)

    def _registration_changed(self) -> None:
        now = self.registered()
        if now == self._registered:
            return
        self._registered = now
        if not now and self.sockets:
            self.sockets.network_lost()
        for name, mode in self.urc_modes.items():
            if mode:
                self._urc(f"+{name}: {self.registration()}")

    def _transmit(self, apdu: bytes) -> bytes:
        channel = apdu[0] & 0x03
        self._trace_write("apdu>", ch=channel, hex=apdu.hex().upper())
        response = self.uicc.transmit(apdu)
        record = {"card_ms": self.timing.card_ms(apdu), "ch": channel, "hex": response.hex().upper()}
        self._apdus.append(record)
        if self._card_reset_armed:  # the card ran it, but reset before its answer got out
            self._card_reset_armed = False
            record["lost"] = True
            self._trace_write("fault", kind="card_reset")
            self._reset_card()
            self._urc("+CPIN: READY")
            raise CmeError(at.SIM_FAILURE)
        return response

    # -- commands: each takes (form, arguments) with form exec/read/test/set ------

    def _cmee(self, form: str, args: str) -> Reply:
        if form == "read":
            return [f"+CMEE: {self.cmee}"], OK
        if form == "test":
            return ["+CMEE: (0-2)"], OK
        if form == "set" and args.strip() in ("0", "1", "2"):
            self.cmee = int(args)
            return [], OK
        if form == "set":
            raise CmeError(at.INCORRECT_PARAMETERS)
        raise AtError(form)

    def _cpin(self, form: str, args: str) -> Reply:
        if form == "test":
            return [], OK
        self._sim()
        if form == "read":
            return ["+CPIN: READY"], OK
        raise CmeError(at.OPERATION_NOT_ALLOWED)  # no PIN is set, nothing to enter

    def _cimi(self, form: str, args: str) -> Reply:
        if form == "test":
            return [], OK
        if form != "exec":
            raise AtError(form)
        self._sim()
        return [self.card.imsi], OK

    def _iccid(self, prefix: str | None) -> at.Handler:
        def handler(form: str, args: str) -> Reply:
            if form == "test":
                return [], OK
            if form not in ("exec", "read"):
                raise AtError(form)
            self._sim()
            return [f"{prefix}: {self.card.iccid}" if prefix else self.card.iccid], OK

        return handler

    def _fixed(self, text: str) -> at.Handler:
        def handler(form: str, args: str) -> Reply:
            if form == "test":
                return [], OK
            if form != "exec":
                raise AtError(form)
            return [text], OK

        return handler

    def _cfun(self, form: str, args: str) -> Reply:
        if form == "read":
            return [f"+CFUN: {self.cfun}"], OK
        if form == "test":
            return ["+CFUN: (0,1,4),(0-1)"], OK
        if form != "set":
            raise AtError(form)
        level, _, reset = args.partition(",")
        if level.strip() not in map(str, CFUN_LEVELS) or reset.strip() not in ("", "0", "1"):
            raise CmeError(at.INCORRECT_PARAMETERS)
        if reset.strip() == "1":  # the module resets, then comes up at full functionality
            self._deferred.append(self.reboot)
            return [], OK
        self.cfun = int(level)
        self._registration_changed()
        return [], OK

    def _csq(self, form: str, args: str) -> Reply:
        if form == "exec":
            return [CSQ_REGISTERED if self.registered() else "+CSQ: 99,99"], OK
        if form == "test":
            return ["+CSQ: (0-31,99),(0-7,99)"], OK
        raise AtError(form)

    def _registration(self, name: str, cell: str) -> at.Handler:
        """+CEREG (EPS) or +CREG (circuit-switched): the same network, each with its own URC mode."""
        def handler(form: str, args: str) -> Reply:
            if form == "test":
                return [f"+{name}: (0-2)"], OK
            if form == "read":
                stat, mode = self.registration(), self.urc_modes[name]
                located = f",{cell}" if mode == 2 and stat in (CEREG_HOME, CEREG_ROAMING) else ""
                return [f"+{name}: {mode},{stat}{located}"], OK
            if form == "set" and args.strip() in ("0", "1", "2"):
                self.urc_modes[name] = int(args)
                return [], OK
            if form == "set":
                raise CmeError(at.INCORRECT_PARAMETERS)
            raise AtError(form)

        return handler

    def _cclk(self, form: str, args: str) -> Reply:
        if form == "test":
            return [], OK
        if form == "read":
            local = self._wall() + self._clock_offset + self._zone * 900
            stamp = time.strftime("%y/%m/%d,%H:%M:%S", time.gmtime(local))
            return [f'+CCLK: "{stamp}{self._zone:+03d}"'], OK
        if form != "set":
            raise AtError(form)
        match = _CCLK.fullmatch(string(args.strip()))
        if not match:
            raise CmeError(at.INCORRECT_PARAMETERS)
        yy, mo, dd, hh, mi, ss, zone = (int(g) for g in match.groups())
        if not (1 <= mo <= 12 and 1 <= dd <= 31 and hh < 24 and mi < 60 and ss < 60 and -96 <= zone <= 96):
            raise CmeError(at.INCORRECT_PARAMETERS)
        utc = calendar.timegm((2000 + yy, mo, dd, hh, mi, ss)) - zone * 900
        self._clock_offset, self._zone = utc - self._wall(), zone
        return [], OK

    def _trace_write(self, direction: str, **fields: object) -> None:
        if self._trace:
            self._trace.write(direction, **fields)


# -- process ------------------------------------------------------------------------


class _Stop(Exception):
    """Raised by the signal handlers to leave the serve loop through its cleanup."""


def _stop(signum: int, frame: object) -> None:
    raise _Stop(signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m safebench_simulator.modem", description=__doc__.split("\n")[0])
    add_arguments(parser)
    parser.add_argument("--print", dest="say", choices=("json", "port"), default="json",
                        help="what to print when ready (default: a JSON line)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level to stderr")
    args = parser.parse_args(argv)
    return run(args, say=args.say, verbose=args.verbose)


def run(args: argparse.Namespace, say: str = "json", verbose: bool = False) -> int:
    """Serve the modem of `args` (the options of add_arguments) until SIGINT or SIGTERM; the exit status.

    When ready it prints `say`: "json" (a line of port, link, pid, control socket, dialect) or "port".
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="safebench_simulator.modem: %(levelname)s %(message)s")

    def fail(message: str) -> int:
        print(f"safebench_simulator.modem: {message}", file=sys.stderr)
        return 2

    if not os.path.isfile(args.card):
        return fail(f"card image not found: {args.card}")
    try:
        modem = Modem(args.card, trace_path=args.trace, dialect=args.dialect, baud=args.baud,
                      realtime=args.realtime)
    except (OSError, ValueError) as e:
        return fail(f"cannot load card image: {e}")

    link_path = Path(args.link).absolute() if args.link else None
    control_path = args.control or (f"{link_path}.ctl" if link_path else None)
    if not args.control and control_path and len(os.fsencode(control_path)) > MAX_UNIX_PATH:
        log.warning("no control socket: %s is too long for a Unix socket path", control_path)
        control_path = None
    uart = control = None
    try:
        uart = link.Uart.open(args.port, modem.timing.baud) if args.port else link.Uart.pty()
        if link_path:
            link.make_link(link_path, uart.name)
        if control_path:
            control = ControlServer(control_path, lambda request: handle_control(modem, request))
    except (OSError, ValueError) as e:
        if uart:
            if link_path:
                link.remove_link(link_path, uart.name)
            uart.close()
        modem.close()
        return fail(f"cannot set up the port: {e}")

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        ready = {"port": uart.name, "link": str(link_path) if link_path else None, "pid": os.getpid(),
                 "control": str(Path(control_path).absolute()) if control_path else None,
                 "dialect": modem.dialect.name}
        print(json.dumps(ready) if say == "json" else uart.name, flush=True)
        link.serve(modem, uart, control)
    except _Stop:
        log.info("stopping")
    except OSError as e:  # the serial adapter went away
        log.error("port lost: %s", e)
        return 1
    finally:
        if link_path:
            link.remove_link(link_path, uart.name)
        if control:
            control.close()
        modem.close()
        uart.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
