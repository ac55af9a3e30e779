# TCP sockets through the modem's socket commands: what the two socket drivers (quectel.py, simcom.py)
# share, the URC bookkeeping, and the stream they hand out.
import time

from atchannel import ATTimeout
from modem import Modem


class SocketModem(Modem):
    SEND_MAX = 1460  # bytes per send command
    RECV_MAX = 1460  # bytes per read command (the modules refuse more)
    DATA_URC = b""  # e.g. b'+QIURC: "recv",'
    CLOSED_URC = b""

    def __init__(self, at):
        super().__init__(at)
        self.waiting, self.closed = set(), set()

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

    def stream(self, conn_id, timeout_ms):
        self.closed.discard(conn_id)
        self.waiting.discard(conn_id)
        return ModemSocket(self, conn_id, timeout_ms)


class ModemSocket:
    """A TCP connection through the modem's socket commands, as a stream (read, readinto, write, close).

    Data is fetched when the modem announces it (a URC) or, failing that, polled, so a URC lost to
    a reboot only slows a read down. `timeout_ms` bounds a read that gets nothing.
    """

    def __init__(self, driver, conn_id, timeout_ms=30000):
        self.driver, self.id, self.timeout_ms = driver, conn_id, timeout_ms
        self.open = True
        self.blocking = True

    def setblocking(self, flag):
        self.blocking = flag

    def write(self, data):
        mv = memoryview(data)
        for i in range(0, len(mv), self.driver.SEND_MAX):
            self.driver.send(self.id, mv[i:i + self.driver.SEND_MAX])
        return len(mv)

    def readinto(self, buf, nbytes=None):
        """Bytes read into `buf` (at least 1), 0 at the end of the stream, None if non-blocking and
        nothing is there; OSError on timeout."""
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
            if time.ticks_diff(deadline, time.ticks_ms()) < 0:
                raise OSError("no data from the peer within %d ms" % self.timeout_ms)
            self.driver.wait_data(self.id, 200)

    def read(self, n=512):
        buf = bytearray(n)
        return bytes(buf[:self.readinto(buf)])

    def close(self):
        if self.open:
            self.open = False
            self.driver.close(self.id)
