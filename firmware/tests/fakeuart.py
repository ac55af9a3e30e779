# A scripted stand-in for machine.UART: each command written gets the next canned reply.
#
# Replies go out in order, as a modem's do: `Late(reply, n)` is held back until n more command lines
# have been written (the answer to a command that timed out), and the replies after it queue behind
# it; `None` is a reply that never comes.


class Late:
    def __init__(self, reply, after=1):
        self.reply, self.after = reply, after


class FakeUART:
    def __init__(self, replies=(), unsolicited=b""):
        self.replies = list(replies)
        self.rx = bytearray(unsolicited)
        self.written = bytearray()
        self._held = []  # [command lines still to wait for, reply], oldest first

    def write(self, b):
        self.written += b
        if bytes(b).endswith(b"\r"):  # a command line is complete
            for held in self._held:
                held[0] -= 1
            reply = self.replies.pop(0) if self.replies else None
            if isinstance(reply, Late):
                self._held.append([reply.after, reply.reply])
            elif reply is not None:
                self._held.append([0, reply])
            while self._held and self._held[0][0] <= 0:
                self.rx += self._held.pop(0)[1]
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
