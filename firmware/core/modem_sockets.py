# TCP sockets through the modem's socket commands: what the two socket drivers (quectel.py, simcom.py)
# share and the URC bookkeeping. The stream they hand out is modem_stream.py, loaded with the first
# connection: the reading path, which makes none, never carries it.

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
        """Bring the modem up for a connection (bringup.py); BringUpError names the stage that failed.
        The bring-up's code is let go after it: the connection's heap (TLS) needs the room more than the
        next connect needs the time to load it again."""
        import sys

        from bringup import bring_up

        try:
            bring_up(self)
        finally:
            for name in ("bringup", "network_settings"):
                sys.modules.pop(name, None)

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

    def close_quietly(self, conn_id):
        """Close `conn_id` where the modem may hold it or not (a failed connect, a board reset's leftover)."""
        try:
            self.close(conn_id)
        except ATError:
            pass

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
        from modem_stream import ModemSocket

        return ModemSocket(self, conn_id, "%s:%d" % (host, port), timeout_ms)
