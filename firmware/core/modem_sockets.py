# TCP sockets through the modem's socket commands: what the two socket drivers (quectel.py, simcom.py)
# share, the URC bookkeeping, and the stream they hand out.
import time

from atchannel import ATError, ATTimeout
from modem import Modem


class SocketModem(Modem):
    SEND_MAX = 1460  # bytes per send command
    RECV_MAX = 1460  # bytes per read command (the modules refuse more)
    DATA_URC = b""  # e.g. b'+QIURC: "recv",'
    CLOSED_URC = b""

    def __init__(self, at):
        super().__init__(at)
        self.waiting, self.closed = set(), set()

    def attach(self):
        """Bring the modem up for a connection (bringup.py); BringUpError names the stage that failed."""
        from bringup import bring_up

        bring_up(self)

    def on_urc(self, line):
        for prefix, ids in ((self.DATA_URC, self.waiting), (self.CLOSED_URC, self.closed)):
            if line.startswith(prefix):
                try:
                    ids.add(int(line[len(prefix):].split(b",")[0]))
                except ValueError:
                    pass

    def wait_data(self, conn_id, ms):
        """Return when the modem announces data (or a close) for `conn_id`, or after `ms`."""
        if conn_id in self.waiting or conn_id in self.closed:
            return
        try:
            self.at.wait_urc(self.DATA_URC, ms)
        except ATTimeout:
            pass  # no announcement: poll anyway

    @staticmethod
    def open_failed(kind, host, port, detail):
        """The error of a connect the modem reports failed. kind: "dns", "refused", "timeout" or None (another
        failure); detail: the modem's own words for it (e.g. "+QIOPEN error 566")."""
        import tcp  # loaded when needed: the reading path never is

        peer = "%s:%d" % (host, port)
        if kind == "dns":
            return tcp.HostNotFound("no such host %s (%s)" % (host, detail), peer)
        if kind == "refused":
            return tcp.ConnectionRefused("connection refused by %s (%s)" % (peer, detail), peer)
        if kind == "timeout":
            return tcp.NetworkTimeout("no connection to %s in time (%s)" % (peer, detail), peer)
        return tcp.NetworkError("cannot connect to %s (%s)" % (peer, detail), peer)

    def stream(self, conn_id, host, port, timeout_ms):
        self.closed.discard(conn_id)
        self.waiting.discard(conn_id)
        return ModemSocket(self, conn_id, "%s:%d" % (host, port), timeout_ms)


class ModemSocket:
    """A TCP connection through the modem's socket commands, as a stream (read, readinto, write, close).

    Data is fetched when the modem announces it (a URC) or, failing that, polled, so a URC lost to
    a reboot only slows a read down. `timeout_ms` bounds each read and each send command.
    """

    def __init__(self, driver, conn_id, peer, timeout_ms=30000):
        self.driver, self.id, self.peer, self.timeout_ms = driver, conn_id, peer, timeout_ms
        self.open = True
        self.blocking = True

    def setblocking(self, flag):
        self.blocking = flag

    def write(self, data):
        mv = memoryview(data)
        for i in range(0, len(mv), self.driver.SEND_MAX):
            self.driver.send(self.id, mv[i:i + self.driver.SEND_MAX], self.timeout_ms)
        return len(mv)

    def readinto(self, buf, nbytes=None):
        """Bytes read into `buf` (at least 1), 0 at the end of the stream, None if non-blocking and
        nothing is there; NetworkTimeout when `timeout_ms` pass without any."""
        mv = memoryview(buf)[:nbytes or len(buf)]
        deadline = time.ticks_add(time.ticks_ms(), self.timeout_ms)
        while True:
            n = self.driver.recv(self.id, mv)
            if n:
                return n
            if self.id in self.driver.closed:
                return 0
            if not self.blocking:
                return None
            left = time.ticks_diff(deadline, time.ticks_ms())
            if left <= 0:
                from tcp import NetworkTimeout

                raise NetworkTimeout("no data from %s within %d ms" % (self.peer, self.timeout_ms), self.peer)
            self.driver.wait_data(self.id, min(left, 200))

    def read(self, n=512):
        buf = bytearray(n)
        got = self.readinto(buf)
        return None if got is None else bytes(buf[:got])

    def close(self):
        if self.open:
            self.open = False
            try:
                self.driver.close(self.id)
            except ATError:
                pass  # the connection is gone either way (the peer closed it, the modem rebooted)
