# A scripted stand-in for machine.UART: each command written gets the next canned reply.
class FakeUART:
    def __init__(self, replies=(), unsolicited=b""):
        self.replies = list(replies)
        self.rx = bytearray(unsolicited)
        self.written = bytearray()

    def write(self, b):
        self.written += b
        if bytes(b).endswith(b"\r") and self.replies:  # a command line is complete
            self.rx += self.replies.pop(0)
        return len(b)

    def any(self):
        return len(self.rx)

    def readinto(self, mv):
        n = min(len(mv), len(self.rx), 64)  # arrive in pieces, as from a real UART
        if not n:
            return None
        mv[:n] = self.rx[:n]
        self.rx = self.rx[n:]
        return n

    def commands(self):
        return [c for c in bytes(self.written).split(b"\r") if c]
