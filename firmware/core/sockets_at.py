# What the two socket dialects share: URC bookkeeping and the stream they hand out.
from modem import Modem, ModemSocket


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
        except OSError:
            pass  # ATTimeout: poll anyway

    def stream(self, conn_id, timeout_ms):
        self.closed.discard(conn_id)
        self.waiting.discard(conn_id)
        return ModemSocket(self, conn_id, timeout_ms)
