# A transport for tests: reads come from `inbox` (optionally in small pieces), writes land in `sent`.
# With `then` (an exception), a read finding the inbox empty raises it instead of reporting the end.


class FakeSock:
    def __init__(self, data=b"", piece=None, then=None):
        self.inbox = bytearray(data)
        self.sent = bytearray()
        self.piece = piece
        self.then = then
        self.closed = False

    def feed(self, data):
        self.inbox += data

    def readinto(self, buf):
        if not self.inbox and self.then is not None:
            raise self.then
        n = min(len(buf), len(self.inbox), self.piece or len(buf))
        buf[:n] = self.inbox[:n]
        self.inbox = self.inbox[n:]
        return n

    def write(self, data):
        self.sent += data
        return len(data)

    def setblocking(self, flag):
        pass

    def close(self):
        self.closed = True
