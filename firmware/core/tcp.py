# TCP connections for the features, whichever way they travel: the network errors in words and codes
# (the modem's socket commands raise them too: modem_sockets), and the board's own network stack as a
# stream whose every wait has a deadline, also where a port's sockets have no timeout of their own
# (the socket is non-blocking and each wait is a select.poll with `timeout_ms`).
import errno

from rpc_codes import E_CONNECTION_REFUSED, E_CONNECTION_RESET, E_HOST_NOT_FOUND, E_NETWORK, E_NETWORK_TIMEOUT

_EPIPE = 32  # a write after the peer's reset; not every port's errno module names it


class NetworkError(Exception):
    """A TCP connection failed; the message says with which peer and how. `code` and `data`: how the
    failure travels in the command protocol."""

    code = E_NETWORK

    def __init__(self, message, peer):
        super().__init__(message)
        self.data = {"peer": peer}


class ConnectionRefused(NetworkError):
    code = E_CONNECTION_REFUSED


class ConnectionReset(NetworkError):
    code = E_CONNECTION_RESET


class HostNotFound(NetworkError):
    code = E_HOST_NOT_FOUND


class NetworkTimeout(NetworkError):
    code = E_NETWORK_TIMEOUT


def os_error(e, peer, waited):
    """The NetworkError for a native socket's OSError `e`; `waited`: what a timeout means here."""
    n = e.args[0] if e.args else None
    if n == errno.ECONNREFUSED:
        return ConnectionRefused("connection refused by %s" % peer, peer)
    if n in (errno.ECONNRESET, errno.ECONNABORTED, errno.ENOTCONN, _EPIPE):
        return ConnectionReset("connection reset by %s" % peer, peer)
    if n in (errno.ETIMEDOUT, errno.EINPROGRESS, errno.EAGAIN):
        return NetworkTimeout(waited, peer)
    return NetworkError("network error with %s: %s" % (peer, errno.errorcode.get(n, n)), peer)


class NativeSocket:
    """A connected socket of the board's own network stack. readinto: at least 1 byte, 0 at the end of
    the stream, None if non-blocking and nothing is there; NetworkTimeout once a wait passes `timeout_ms`."""

    blocking = True

    def __init__(self, sock, peer, timeout_ms):
        import select

        self.sock, self.peer, self.timeout_ms = sock, peer, timeout_ms
        sock.setblocking(False)
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)

    def readinto(self, buf, nbytes=None):
        import select

        mv = memoryview(buf)[:nbytes or len(buf)]
        while True:
            n = self._io(self.sock.readinto, mv)
            if n is not None or not self.blocking:
                return n
            self._wait(select.POLLIN, "no data from %s within %d ms")

    def write(self, data):
        import select

        mv = memoryview(data)
        sent = 0
        while sent < len(mv):
            k = self._io(self.sock.write, mv[sent:])
            if k:
                sent += k
            else:
                self._wait(select.POLLOUT, "%s took no data within %d ms")
        return sent

    def setblocking(self, flag):
        self.blocking = flag

    def _io(self, op, mv):
        try:
            return op(mv)
        except OSError as e:
            if e.args and e.args[0] == errno.EAGAIN:
                return None  # ports differ: nothing there yet
            raise os_error(e, self.peer, "%s timed out" % self.peer) from None

    def _wait(self, event, what):
        self._poll.modify(self.sock, event)
        if not self._poll.poll(self.timeout_ms):
            raise NetworkTimeout(what % (self.peer, self.timeout_ms), self.peer)

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def connect(host, port, timeout_ms):
    """A NativeSocket to host:port; HostNotFound, ConnectionRefused, NetworkTimeout, ... when it fails."""
    import socket

    peer = "%s:%d" % (host, port)
    try:
        addr = socket.getaddrinfo(host, port)[0][-1]
    except (OSError, IndexError):  # ports report resolver failures each their own way
        raise HostNotFound("no such host %s" % host, peer) from None
    sock = socket.socket()
    try:
        if hasattr(sock, "settimeout"):
            sock.settimeout(timeout_ms / 1000)  # bounds the connect where the port can
        sock.connect(addr)
    except OSError as e:
        sock.close()
        raise os_error(e, peer, "no connection to %s within %d ms" % (peer, timeout_ms)) from None
    return NativeSocket(sock, peer, timeout_ms)
