"""TCP sockets of the simulated modem: real connections behind Quectel's and SIMCom's AT commands.

A ``SocketStack`` owns the PDP contexts and the connections; its subclasses speak one module's
commands and URCs. Connections are real TCP sockets of the host (the tests use loopback only),
read without blocking by ``poll()``, which the modem's serve loop calls when one is readable.
Received bytes wait in a per-connection buffer until the host reads them, as in the modules'
"buffer access" mode; one URC announces data that arrives into an empty buffer.

Quectel BG95/BG96 (TCP/IP AT commands manual): ``AT+QIACT=<ctx>`` / ``?`` / ``AT+QIDEACT``,
``AT+QIOPEN=<ctx>,<id>,"TCP","<host>",<port>[,0[,0]]`` -> OK, then URC ``+QIOPEN: <id>,<err>``;
``AT+QISEND=<id>,<len>`` -> ``> ``, exactly len bytes -> ``SEND OK`` (``AT+QISEND=<id>`` takes
bytes up to Ctrl-Z, ``AT+QISEND=<id>,0`` reports counters); URC ``+QIURC: "recv",<id>``;
``AT+QIRD=<id>[,<len>]`` -> ``+QIRD: <n>`` + the raw bytes (``AT+QIRD=<id>,0`` reports counters);
``AT+QICLOSE=<id>``; URC ``+QIURC: "closed",<id>`` when the peer closes, ``+QIURC: "pdpdeact",<ctx>``
when the network goes. Errors: 561 context not active, 563 id in use, 565 DNS, 566 connect.

SIMCom SIM7080G: ``AT+CNACT=<pdp>,<0|1>`` -> OK + URC ``+APP PDP: <pdp>,ACTIVE|DEACTIVE``,
``AT+CNACT?``; ``AT+CAOPEN=<cid>,<pdp>,"TCP","<host>",<port>`` -> ``+CAOPEN: <cid>,<result>`` OK;
``AT+CASEND=<cid>,<len>`` -> ``> ``, len bytes -> OK; URC ``+CADATAIND: <cid>``;
``AT+CARECV=<cid>,<len>`` -> ``+CARECV: <n>,<bytes>`` OK; ``AT+CACLOSE=<cid>``; ``AT+CASTATE?``;
URC ``+CASTATE: <cid>,0`` when the peer closes. Results: 20 DNS, 21 network not active, 23 refused.

Simplifications: TCP clients only (no UDP, listeners, TLS or transparent/direct-push modes: those
parameters answer ERROR); the connect is made synchronously with a short limit, so Quectel's
``+QIOPEN`` URC follows its OK at once; a closed connection keeps its id until the host closes
it, and its unread bytes stay readable.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from .at import OK, AtError, Handler, Prompt, Reply, integer, split_args, string

MAX_SEND = 1460
RX_LIMIT = 64 * 1024  # bytes buffered per connection; beyond it the peer waits (TCP flow control)
CONNECT_TIMEOUT = 5.0
SEND_TIMEOUT = 5.0
LOCAL_ADDRESS = "10.0.0.2"  # what the contexts report as their IP address

Connector = Callable[[tuple[str, int], float], socket.socket]


class Connection:
    def __init__(self, conn_id: int, sock: socket.socket, host: str, port: int, context: int):
        self.id, self.sock, self.host, self.port, self.context = conn_id, sock, host, port, context
        self.rx = bytearray()
        self.connected = True
        self.announced = False  # a data URC was sent and the buffer not yet emptied
        self.sent = self.received = self.read = 0
        sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, data: bytes) -> bool:
        if not self.connected:
            return False
        try:
            self.sock.settimeout(SEND_TIMEOUT)
            self.sock.sendall(data)
        except OSError:
            return False
        finally:
            if self.sock.fileno() >= 0:
                self.sock.setblocking(False)
        self.sent += len(data)
        return True

    def take(self, size: int) -> bytes:
        data = bytes(self.rx[:size])
        del self.rx[:size]
        self.read += len(data)
        if not self.rx:
            self.announced = False
        return data

    def close(self) -> None:
        self.connected = False
        self.sock.close()


class SocketStack:
    """PDP contexts and TCP connections; subclasses add one module's AT commands and URCs."""

    ids: range
    contexts: range

    def __init__(self, urc: Callable[[str], None], network: Callable[[], bool],
                 connect: Connector = socket.create_connection):
        self._urc = urc
        self._network = network  # registered: a context can be activated
        self._connect = connect
        self.active: set[int] = set()
        self.conns: dict[int, Connection] = {}

    def commands(self) -> dict[str, Handler]:
        raise NotImplementedError

    # -- driven by the modem ------------------------------------------------------

    def waiting(self) -> list[Connection]:
        """Connections worth a select(): open, with room in their buffer."""
        return [c for c in self.conns.values() if c.connected and len(c.rx) < RX_LIMIT]

    def poll(self) -> None:
        """Take in what the peers sent or that they closed, announcing it with URCs."""
        for conn in self.waiting():
            try:
                data = conn.sock.recv(RX_LIMIT - len(conn.rx))
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""  # reset by the peer: as good as closed
            if data:
                conn.rx += data
                conn.received += len(data)
                if not conn.announced:
                    conn.announced = True
                    self._urc(self.data_urc(conn.id))
            else:
                conn.close()
                self._urc(self.closed_urc(conn.id))

    def network_drop(self, conn_id: int | None = None) -> list[int]:
        """The network loses the connection(s): the peer sees a close, the host a closed URC."""
        dropped = [c for c in self.conns.values() if c.connected and conn_id in (None, c.id)]
        for conn in dropped:
            conn.close()
            self._urc(self.closed_urc(conn.id))
        return [c.id for c in dropped]

    def network_lost(self) -> None:
        """Registration lost (SIM removed, radio off): contexts go down, connections with them."""
        for context in sorted(self.active):
            self._deactivate(context, announce=True)

    def reset(self) -> None:
        """Module reboot: everything closed without a word."""
        for conn in self.conns.values():
            conn.close()
        self.conns.clear()
        self.active.clear()

    def status(self) -> dict:
        return {"contexts": sorted(self.active),
                "connections": {str(c.id): {"peer": f"{c.host}:{c.port}", "connected": c.connected,
                                            "unread": len(c.rx), "sent": c.sent, "received": c.received}
                                for c in self.conns.values()}}

    # -- dialect vocabulary ---------------------------------------------------------

    def data_urc(self, conn_id: int) -> str:
        raise NotImplementedError

    def closed_urc(self, conn_id: int) -> str:
        raise NotImplementedError

    def pdp_urc(self, context: int, active: bool) -> str | None:
        raise NotImplementedError

    # -- shared mechanics -----------------------------------------------------------

    def _activate(self, context: int) -> None:
        if context in self.active or not self._network():
            raise AtError("cannot activate")
        self.active.add(context)

    def _deactivate(self, context: int, announce: bool) -> None:
        self.active.discard(context)
        for conn in [c for c in self.conns.values() if c.context == context]:
            conn.close()
            del self.conns[conn.id]
        urc = self.pdp_urc(context, False) if announce else None
        if urc:
            self._urc(urc)

    def _open(self, conn_id: int, context: int, host: str, port: int) -> str | None:
        """Connect; None on success, else "dns" or "connect"."""
        try:
            sock = self._connect((host, port), CONNECT_TIMEOUT)
        except socket.gaierror:
            return "dns"
        except OSError:
            return "connect"
        self.conns[conn_id] = Connection(conn_id, sock, host, port, context)
        return None

    def _conn(self, param: str) -> Connection:
        conn = self.conns.get(integer(param, self.ids.start, self.ids.stop - 1))
        if conn is None:
            raise AtError("no such connection")
        return conn

    def _close(self, conn: Connection) -> None:
        conn.close()
        del self.conns[conn.id]


def _tcp_target(params: list[str]) -> tuple[str, int]:
    if string(params[0]).upper() != "TCP":
        raise AtError("only TCP clients are simulated")
    host = string(params[1])
    if not host:
        raise AtError("empty host")
    return host, integer(params[2], 1, 65535)


def _args(args: str, low: int, high: int) -> list[str]:
    params = split_args(args)
    if not low <= len(params) <= high:
        raise AtError("wrong number of parameters")
    return params


class QuectelSockets(SocketStack):
    ids = range(0, 12)
    contexts = range(1, 17)
    MAX_READ = 1500
    ERR_PDP, ERR_IN_USE, ERR_DNS, ERR_CONNECT = 561, 563, 565, 566

    def commands(self) -> dict[str, Handler]:
        return {"QIACT": self._qiact, "QIDEACT": self._qideact, "QIOPEN": self._qiopen,
                "QISEND": self._qisend, "QIRD": self._qird, "QICLOSE": self._qiclose}

    def data_urc(self, conn_id: int) -> str:
        return f'+QIURC: "recv",{conn_id}'

    def closed_urc(self, conn_id: int) -> str:
        return f'+QIURC: "closed",{conn_id}'

    def pdp_urc(self, context: int, active: bool) -> str | None:
        return None if active else f'+QIURC: "pdpdeact",{context}'

    def _qiact(self, form: str, args: str) -> Reply:
        if form == "read":
            return [f'+QIACT: {c},1,1,"{LOCAL_ADDRESS}"' for c in sorted(self.active)], OK
        if form == "test":
            return ["+QIACT: (1-16)"], OK
        if form != "set":
            raise AtError(form)
        self._activate(integer(_args(args, 1, 1)[0], 1, 16))
        return [], OK

    def _qideact(self, form: str, args: str) -> Reply:
        if form != "set":
            raise AtError(form)
        self._deactivate(integer(_args(args, 1, 1)[0], 1, 16), announce=False)
        return [], OK

    def _qiopen(self, form: str, args: str) -> Reply:
        if form != "set":
            raise AtError(form)
        params = _args(args, 5, 7)
        context = integer(params[0], 1, 16)
        conn_id = integer(params[1], self.ids.start, self.ids.stop - 1)
        host, port = _tcp_target(params[2:5])
        if len(params) > 5:
            integer(params[5], 0, 65535)  # local port: the host's ephemeral port is used anyway
        if len(params) > 6 and integer(params[6], 0, 2) != 0:
            raise AtError("only buffer access mode is simulated")
        if conn_id in self.conns:
            err = self.ERR_IN_USE
        elif context not in self.active:
            err = self.ERR_PDP
        else:
            failure = self._open(conn_id, context, host, port)
            err = {None: 0, "dns": self.ERR_DNS, "connect": self.ERR_CONNECT}[failure]
        self._urc(f"+QIOPEN: {conn_id},{err}")  # the modem holds it until after the OK
        return [], OK

    def _qisend(self, form: str, args: str) -> Reply | Prompt:
        if form != "set":
            raise AtError(form)
        params = _args(args, 1, 2)
        conn = self._conn(params[0])
        if len(params) == 2 and integer(params[1], 0, MAX_SEND) == 0:
            return [f"+QISEND: {conn.sent},{conn.sent},0"], OK  # everything is acknowledged at once
        if not conn.connected:
            raise AtError("connection closed")
        size = integer(params[1], 1, MAX_SEND) if len(params) == 2 else None
        return Prompt(size, lambda data: ([], "SEND OK" if conn.send(data) else "SEND FAIL"))

    def _qird(self, form: str, args: str) -> Reply:
        if form != "set":
            raise AtError(form)
        params = _args(args, 1, 2)
        conn = self._conn(params[0])
        size = integer(params[1], 0, self.MAX_READ) if len(params) == 2 else self.MAX_READ
        if size == 0:
            return [f"+QIRD: {conn.received},{conn.read},{len(conn.rx)}"], OK
        data = conn.take(size)
        lines = [f"+QIRD: {len(data)}"] + ([data.decode("latin-1")] if data else [])
        return lines, OK

    def _qiclose(self, form: str, args: str) -> Reply:
        if form != "set":
            raise AtError(form)
        params = _args(args, 1, 2)
        conn_id = integer(params[0], self.ids.start, self.ids.stop - 1)
        if conn_id in self.conns:
            self._close(self.conns[conn_id])
        return [], OK


class SimcomSockets(SocketStack):
    ids = range(0, 13)
    contexts = range(0, 4)
    MAX_READ = 1460
    RESULT_DNS, RESULT_NO_NETWORK, RESULT_REFUSED = 20, 21, 23

    def commands(self) -> dict[str, Handler]:
        return {"CNACT": self._cnact, "CAOPEN": self._caopen, "CASEND": self._casend,
                "CARECV": self._carecv, "CACLOSE": self._caclose, "CASTATE": self._castate}

    def data_urc(self, conn_id: int) -> str:
        return f"+CADATAIND: {conn_id}"

    def closed_urc(self, conn_id: int) -> str:
        return f"+CASTATE: {conn_id},0"

    def pdp_urc(self, context: int, active: bool) -> str | None:
        return f"+APP PDP: {context},{'ACTIVE' if active else 'DEACTIVE'}"

    def _cnact(self, form: str, args: str) -> Reply:
        if form == "read":
            return [f'+CNACT: {c},{int(c in self.active)},"{LOCAL_ADDRESS if c in self.active else "0.0.0.0"}"'
                    for c in self.contexts], OK
        if form == "test":
            return ["+CNACT: (0-3),(0-2)"], OK
        if form != "set":
            raise AtError(form)
        params = _args(args, 2, 2)
        context, action = integer(params[0], 0, 3), integer(params[1], 0, 1)
        if action:
            self._activate(context)
            self._urc(self.pdp_urc(context, True))
        elif context in self.active:
            self._deactivate(context, announce=True)
        else:
            raise AtError("context not active")
        return [], OK

    def _caopen(self, form: str, args: str) -> Reply:
        if form != "set":
            raise AtError(form)
        params = _args(args, 5, 6)
        conn_id = integer(params[0], self.ids.start, self.ids.stop - 1)
        context = integer(params[1], 0, 3)
        host, port = _tcp_target(params[2:5])
        if len(params) == 6:
            integer(params[5], 0, 1)  # receive mode: buffered either way here
        old = self.conns.get(conn_id)
        if old is not None and old.connected:
            raise AtError("connection id in use")
        if old is not None:
            self._close(old)  # the peer had closed it; opening again replaces it
        if context not in self.active:
            result = self.RESULT_NO_NETWORK
        else:
            failure = self._open(conn_id, context, host, port)
            result = {None: 0, "dns": self.RESULT_DNS, "connect": self.RESULT_REFUSED}[failure]
        return [f"+CAOPEN: {conn_id},{result}"], OK

    def _casend(self, form: str, args: str) -> Prompt:
        if form != "set":
            raise AtError(form)
        params = _args(args, 2, 3)
        conn = self._conn(params[0])
        size = integer(params[1], 1, MAX_SEND)
        if len(params) == 3:
            integer(params[2], 0, 60000)  # input time: the simulator waits as long as it takes
        if not conn.connected:
            raise AtError("connection closed")
        return Prompt(size, lambda data: ([], OK if conn.send(data) else "ERROR"))

    def _carecv(self, form: str, args: str) -> Reply:
        if form != "set":
            raise AtError(form)
        params = _args(args, 2, 2)
        conn = self._conn(params[0])
        data = conn.take(integer(params[1], 1, self.MAX_READ))
        if not data:
            return ["+CARECV: 0"], OK
        return [f"+CARECV: {len(data)},{data.decode('latin-1')}"], OK

    def _caclose(self, form: str, args: str) -> Reply:
        if form != "set":
            raise AtError(form)
        self._close(self._conn(_args(args, 1, 1)[0]))
        return [], OK

    def _castate(self, form: str, args: str) -> Reply:
        if form == "read":
            return [f"+CASTATE: {c.id},{int(c.connected)}" for c in self.conns.values()], OK
        if form == "test":
            return [], OK
        raise AtError(form)
