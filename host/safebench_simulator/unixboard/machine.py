# `machine` for the simulated board (MicroPython, unix port): the built-in module plus what a
# board has and the unix port lacks: UART (a pty wired to the simulated modem), reset() and
# unique_id(). Imported by sim_boot.py before '/' is remounted, so host paths still resolve.
import os
import select
import sys
import termios
import time

_saved_path = sys.path[:]
sys.path.clear()
from machine import *  # noqa: E402,F403  with sys.path empty this is the built-in module

sys.path.extend(_saved_path)
del _saved_path

HARD_RESET_EXIT = 99  # the supervisor restarts the VM as after a power cycle (main.py runs)
_HUNG_UP = select.POLLHUP | select.POLLERR  # the pty's other end closed: the simulated modem is gone
_VMIN, _VTIME = 6, 5  # Linux indices into termios cc; the unix port exports no names for them


def reset():
    sys.exit(HARD_RESET_EXIT)


def unique_id():
    """The board's silicon ID: 8 bytes the bench keeps for it (board.silicon_id), as an RP2040's flash has."""
    import binascii

    return binascii.unhexlify(os.getenv("SAFEBENCH_BOARD_ID") or "0000000000000000")


def freq():
    return 240000000


def _open_port(path):
    f = open(path, "r+b", buffering=0)
    fd = f.fileno()
    termios.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[6][_VMIN] = 0  # read() returns what is there instead of blocking for n bytes
    attrs[6][_VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    return f


# Opened now, while '/dev' is still the host's: a board's UART pins exist from power-on.
_ports = {}
for _id in (0, 1, 2):
    _path = os.getenv("SAFEBENCH_UART%d" % _id)
    if _path:
        _ports[_id] = _open_port(_path)
del _id, _path


class UART:
    """The subset of machine.UART that firmware uses, on the pty wired to the simulated modem.

    `timeout` is the wait for the first byte of a read and `timeout_char` the longest gap
    between bytes, both in ms, as on ESP32 and RP2. When the modem's end of the pty is gone (its
    process killed) it behaves as a UART whose modem went silent: writes go nowhere, reads wait out
    their timeout and return nothing.
    """

    def __init__(self, id, baudrate=115200, **kw):
        if id not in _ports:
            raise ValueError("UART(%d) is not wired on this board" % id)
        self._f = _ports[id]
        self._poll = select.poll()
        self._poll.register(self._f.fileno(), select.POLLIN)
        self.timeout = 0
        self.timeout_char = 2
        self.init(baudrate, **kw)

    def init(self, baudrate=115200, bits=8, parity=None, stop=1, tx=None, rx=None, timeout=None,
             timeout_char=None, **kw):
        self.baudrate = baudrate
        if timeout is not None:
            self.timeout = timeout
        if timeout_char is not None:
            self.timeout_char = timeout_char

    def deinit(self):
        pass

    def any(self):
        return 1 if self._wait(0) else 0

    def write(self, buf):
        try:
            return self._f.write(buf)
        except OSError:  # EIO: nobody on the other end; a UART sends anyway
            return len(buf)

    def flush(self):
        pass

    def readinto(self, buf, nbytes=None):
        mv = memoryview(buf)
        want = len(buf) if nbytes is None else nbytes
        if not self._wait(self.timeout):
            return None
        got = 0
        while got < want:
            n = self._f.readinto(mv[got:want])
            if not n:
                if not self._wait(self.timeout_char):
                    break
                continue
            got += n
        return got

    def _wait(self, ms):
        """True when bytes arrive within `ms`. A hung-up pty polls ready at once: wait `ms` as a silent line does."""
        # ipoll reuses its result: a real UART's C code allocates nothing from the board's heap, and any()
        # runs between every two reads of the AT channel's wait.
        for _, events in self._poll.ipoll(ms):
            if events & _HUNG_UP:
                time.sleep_ms(ms)
                return False
            return True
        return False

    def read(self, nbytes=None):
        buf = bytearray(nbytes or 256)
        n = self.readinto(buf)
        if not n:
            return None
        return bytes(buf[:n])

    def readline(self):
        line = bytearray()
        deadline = time.ticks_add(time.ticks_ms(), self.timeout)
        while time.ticks_diff(deadline, time.ticks_ms()) >= 0:
            b = self.read(1)
            if b:
                line += b
                if b == b"\n":
                    break
        return bytes(line) if line else None
