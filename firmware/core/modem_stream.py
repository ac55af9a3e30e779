# A TCP connection through a socket modem's commands (modem_sockets.py), as the stream TLS reads and writes.
import time

from atchannel import ATError, ATTimeout


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
        try:
            for i in range(0, len(mv), self.driver.SEND_MAX):
                self.driver.send(self.id, mv[i:i + self.driver.SEND_MAX], self.timeout_ms)
        except ATTimeout:
            raise  # the modem itself did not answer
        except ATError as e:  # the modem refuses to send on a connection the peer or the network ended
            import tcp  # loaded when needed

            if self.id in self.driver.closed:
                raise tcp.ConnectionReset("connection closed by %s (%s)" % (self.peer, e), self.peer) from None
            raise tcp.NetworkError("cannot send to %s (%s)" % (self.peer, e), self.peer) from None
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
                from tcp import NetworkTimeout  # loaded when needed

                raise NetworkTimeout("no data from %s within %d ms" % (self.peer, self.timeout_ms), self.peer)
            self.driver.wait_data(self.id, min(left, 200))

    def read(self, n=512):
        buf = bytearray(n)
        got = self.readinto(buf)
        return None if got is None else bytes(buf[:got])

    def close(self):
        if self.open:
            self.open = False
            self.driver.close_quietly(self.id)  # the connection is gone either way (the peer closed it, the modem rebooted)
