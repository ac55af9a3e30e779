"""Fault injection for the simulated modem: what breaks, and the control socket that breaks it.

While the modem runs, a test (or a person) connects to its Unix-domain control socket and sends
JSON lines; each gets one JSON line back: ``{"ok": true, "status": {...}}`` or ``{"ok": false,
"error": "..."}``. ``FaultControl`` is the client. Requests (``{"cmd": NAME, ...params}``):

- ``drop``: the next reply is never sent (the command still runs)
- ``delay`` ``ms``: the next reply is sent ``ms`` later
- ``garble`` ``count``: ``count`` bytes of the next reply are replaced by other bytes
- ``split`` ``chunk`` ``gap_ms``: the next reply goes out in ``chunk``-byte pieces, ``gap_ms`` apart
- ``hold``: the next reply is held back until the board sends its next bytes, then goes out before their
  answer: a reply later than any timeout, on a board of any speed (an emulated one spins slowly)
- ``cme`` ``code``: the next command is not run but answered ``+CME ERROR: <code>``
- ``sim_remove``: SIM out: SIM commands answer ``+CME ERROR: 10``; open channels are lost
- ``sim_insert``: SIM back in (its image is read again from the file): URC ``+CPIN: READY``
- ``operator_switch`` ``iccid``: an eSIM operator profile switch to ``iccid`` (default: the card's other
  profile, made the first time): new ICCID and IMSI, the IoT SAFE applet and its keys untouched; the card
  resets (URCs ``+CPIN: NOT READY``, ``+CPIN: READY``)
- ``sim_busy`` ``ms``: SIM commands answer ``+CME ERROR: 14`` for ``ms``
- ``reboot`` ``boot_ms``: the module restarts: state reset, sockets dropped, start-up URCs again
- ``card_reset``: the next APDU reaches the card, but its answer is lost and the UICC resets
- ``network_drop`` ``id``: the network loses connection ``id`` (or all): closed URC, the peer sees a close
- ``refuse`` ``commands``: these command lines are answered ``ERROR`` from now on, as by a module that
  lacks them (``["AT+CMEE=1", "ATE0"]``; a bare name such as ``"AT+CMEE"`` refuses all its forms)
- ``register`` ``stat`` ``ms``: the network reports registration ``stat`` (27.007: 0 not searching,
  1 home, 2 searching, 3 denied, 4 unknown, 5 roaming) for ``ms``, then home; ``ms`` 0: until changed
- ``status``: what is pending and what state the modem is in
- ``clear``: forget the pending one-shot faults, the busy window, an armed card reset, the refused
  commands and the registration set

Every reply carries the status, so a test sees what it armed.
"""

from __future__ import annotations

import json
import os
import random
import socket
import stat
from collections.abc import Callable
from pathlib import Path

MAX_REQUEST = 64 * 1024
MAX_MS = 600_000

Chunks = list[tuple[float, bytes]]  # (seconds to wait before, bytes)


class FaultPlan:
    """One-shot faults waiting for the next reply or command."""

    def __init__(self, seed: int | None = None):
        self._rng = random.Random(seed)
        self.clear()

    def clear(self) -> None:
        self.drop = False
        self.delay_ms = 0
        self.garble = 0
        self.split: tuple[int, int] | None = None
        self.hold = False
        self.cme: int | None = None

    def take_cme(self) -> int | None:
        code, self.cme = self.cme, None
        return code

    def shape(self, reply: bytes, delay_s: float = 0.0) -> Chunks:
        """The chunks in which to send the next reply, using up the faults armed for it."""
        drop, delay_ms, garble, split = self.drop, self.delay_ms, self.garble, self.split
        self.drop, self.delay_ms, self.garble, self.split, self.hold = False, 0, 0, None, False
        if drop:
            return []
        if garble:
            reply = self._garbled(reply, garble)
        delay_s += delay_ms / 1000
        if not split:
            return [(delay_s, reply)]
        size, gap_ms = split
        pieces = [reply[i:i + size] for i in range(0, len(reply), size)]
        return [(delay_s if i == 0 else gap_ms / 1000, piece) for i, piece in enumerate(pieces)]

    def pending(self) -> dict:
        armed = {"drop": self.drop, "delay_ms": self.delay_ms, "garble": self.garble,
                 "split": list(self.split) if self.split else None, "hold": self.hold, "cme": self.cme}
        return {name: value for name, value in armed.items() if value}

    def _garbled(self, reply: bytes, count: int) -> bytes:
        data = bytearray(reply)
        for i in self._rng.sample(range(len(data)), min(count, len(data))):
            data[i] = (data[i] + self._rng.randrange(1, 256)) & 0xFF  # never the same byte
        return bytes(data)


# -- requests -------------------------------------------------------------------------


class RequestError(ValueError):
    """A control request that cannot be carried out."""


def _int(request: dict, name: str, low: int, high: int, default: int | None = None) -> int:
    value = request.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RequestError(f"{name} must be an integer in {low}..{high}")
    return value


def _drop(modem, r):
    modem.faults.drop = True


def _delay(modem, r):
    modem.faults.delay_ms = _int(r, "ms", 0, MAX_MS)


def _garble(modem, r):
    modem.faults.garble = _int(r, "count", 1, 100_000, 1)


def _split(modem, r):
    modem.faults.split = (_int(r, "chunk", 1, 100_000, 1), _int(r, "gap_ms", 0, MAX_MS, 20))


def _hold(modem, r):
    modem.faults.hold = True


def _cme(modem, r):
    modem.faults.cme = _int(r, "code", 0, 65535)


def _network_drop(modem, r):
    conn_id = r.get("id")
    if conn_id is not None:
        conn_id = _int(r, "id", 0, 99)
    if not modem.network_drop(conn_id):
        raise RequestError("no open connection to drop")


def _refuse(modem, r):
    commands = r.get("commands")
    if not isinstance(commands, list) or not all(isinstance(c, str) and c.strip() for c in commands):
        raise RequestError("commands must be a list of command lines, e.g. [\"AT+CMEE=1\"]")
    modem.refuse(commands)


def _register(modem, r):
    modem.set_registration(_int(r, "stat", 0, 5), _int(r, "ms", 0, MAX_MS, 0))


def _sim_insert(modem, r):
    try:
        modem.insert_sim()
    except (OSError, ValueError) as e:
        raise RequestError(f"card image unusable: {e}") from e


def _operator_switch(modem, r):
    iccid = r.get("iccid")
    if iccid is not None and not (isinstance(iccid, str) and iccid.isdigit() and 19 <= len(iccid) <= 20):
        raise RequestError("iccid must be 19 or 20 decimal digits")
    if not modem.sim_present:
        raise RequestError("no SIM in the modem: insert it first")
    try:
        modem.switch_operator(iccid)
    except ValueError as e:
        raise RequestError(str(e)) from e


ACTIONS: dict[str, Callable] = {
    "drop": _drop,
    "delay": _delay,
    "garble": _garble,
    "split": _split,
    "hold": _hold,
    "cme": _cme,
    "sim_remove": lambda modem, r: modem.remove_sim(),
    "sim_insert": _sim_insert,
    "operator_switch": _operator_switch,
    "sim_busy": lambda modem, r: modem.sim_busy(_int(r, "ms", 0, MAX_MS)),
    "reboot": lambda modem, r: modem.reboot(_int(r, "boot_ms", 0, MAX_MS, 0)),
    "card_reset": lambda modem, r: modem.arm_card_reset(),
    "network_drop": _network_drop,
    "refuse": _refuse,
    "register": _register,
    "status": lambda modem, r: None,
    "clear": lambda modem, r: modem.clear_faults(),
}


def handle(modem, request: object) -> dict:
    """Carry out one request on ``modem``; the JSON-able reply."""
    try:
        if not isinstance(request, dict) or request.get("cmd") not in ACTIONS:
            raise RequestError(f"expected {{\"cmd\": one of {', '.join(ACTIONS)}}}")
        ACTIONS[request["cmd"]](modem, request)
    except RequestError as e:
        return {"ok": False, "error": str(e), "status": modem.status()}
    return {"ok": True, "status": modem.status()}


# -- server side ----------------------------------------------------------------------


class ControlServer:
    """Non-blocking Unix-socket server of JSON-line requests, serviced from the modem's select loop."""

    def __init__(self, path: str | os.PathLike, on_request: Callable[[object], dict]):
        self.path = Path(path)
        self._on_request = on_request
        if os.path.lexists(self.path):
            if not stat.S_ISSOCK(os.lstat(self.path).st_mode):
                raise FileExistsError(f"{self.path} exists and is not a socket")
            self.path.unlink()  # a stale socket of a killed modem
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._listener.bind(str(self.path))
            self._listener.listen(4)
        except OSError:
            self._listener.close()
            raise
        self._listener.setblocking(False)
        self._clients: dict[socket.socket, bytearray] = {}

    def sockets(self) -> list[socket.socket]:
        return [self._listener, *self._clients]

    def service(self, readable: list) -> None:
        for sock in readable:
            if sock is self._listener:
                self._accept()
            elif sock in self._clients:
                self._receive(sock)

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        self._listener.close()
        if self.path.is_socket():
            self.path.unlink()

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        client.setblocking(False)
        self._clients[client] = bytearray()

    def _receive(self, client: socket.socket) -> None:
        buffer = self._clients[client]
        try:
            data = client.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        buffer += data
        while b"\n" in buffer:
            line, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            if line.strip() and not self._answer(client, line):
                return
        if len(buffer) > MAX_REQUEST:
            self._answer(client, b"")  # tell the client why, then hang up
            self._drop(client)

    def _answer(self, client: socket.socket, line: bytes) -> bool:
        try:
            request = json.loads(line)
        except ValueError:
            reply = {"ok": False, "error": "not a JSON line"}
        else:
            reply = self._on_request(request)
        try:
            client.setblocking(True)
            client.settimeout(2.0)  # a client that does not read must not stall the modem for long
            client.sendall(json.dumps(reply).encode() + b"\n")
            client.setblocking(False)
            return True
        except OSError:
            self._drop(client)
            return False

    def _drop(self, client: socket.socket) -> None:
        self._clients.pop(client, None)
        client.close()


# -- client side ----------------------------------------------------------------------


class FaultControlError(Exception):
    """The modem refused a fault request, or its control socket did not answer."""


class FaultControl:
    """Client of a running modem's control socket: ``FaultControl(path).drop()`` and so on."""

    def __init__(self, path: str | os.PathLike, timeout: float = 5.0):
        self.path = str(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(self.path)
        except OSError as e:
            self._sock.close()
            raise FaultControlError(f"cannot reach the modem's control socket {self.path}: {e}") from e
        self._buffer = b""

    def request(self, cmd: str, **params: object) -> dict:
        """Send one request; the modem's status after it. FaultControlError if refused."""
        try:
            self._sock.sendall(json.dumps({"cmd": cmd, **params}).encode() + b"\n")
            while b"\n" not in self._buffer:
                data = self._sock.recv(65536)
                if not data:
                    raise FaultControlError("the modem closed its control socket")
                self._buffer += data
        except OSError as e:
            raise FaultControlError(f"control socket {self.path}: {e}") from e
        line, _, self._buffer = self._buffer.partition(b"\n")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise FaultControlError(reply.get("error", "refused"))
        return reply["status"]

    def drop(self) -> dict:
        return self.request("drop")

    def delay(self, ms: int) -> dict:
        return self.request("delay", ms=ms)

    def garble(self, count: int = 1) -> dict:
        return self.request("garble", count=count)

    def split(self, chunk: int = 1, gap_ms: int = 20) -> dict:
        return self.request("split", chunk=chunk, gap_ms=gap_ms)

    def hold(self) -> dict:
        return self.request("hold")

    def cme(self, code: int) -> dict:
        return self.request("cme", code=code)

    def sim_remove(self) -> dict:
        return self.request("sim_remove")

    def sim_insert(self) -> dict:
        return self.request("sim_insert")

    def operator_switch(self, iccid: str | None = None) -> dict:
        return self.request("operator_switch", **({"iccid": iccid} if iccid else {}))

    def sim_busy(self, ms: int) -> dict:
        return self.request("sim_busy", ms=ms)

    def reboot(self, boot_ms: int = 0) -> dict:
        return self.request("reboot", boot_ms=boot_ms)

    def card_reset(self) -> dict:
        return self.request("card_reset")

    def network_drop(self, conn_id: int | None = None) -> dict:
        return self.request("network_drop", id=conn_id)

    def refuse(self, commands: list[str]) -> dict:
        return self.request("refuse", commands=commands)

    def register(self, stat: int, ms: int = 0) -> dict:
        return self.request("register", stat=stat, ms=ms)

    def status(self) -> dict:
        return self.request("status")

    def clear(self) -> dict:
        return self.request("clear")

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> FaultControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
