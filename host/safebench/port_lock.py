"""One safebench command per board at a time: a lock on the board's serial port, held for the whole command.

A second command on the same port is refused at once instead of talking to the board in the middle of
the first one's exchange (where its `connect()` would see no answer and reboot the board). The lock is
an flock on a file named after the port's real path, so every spelling of the port (a symlink such
as .bench/sim0/tty, /dev/serial/by-id/...) is one lock, and it goes away with the process that held it,
however it ends. It is not a lock on the device itself: mpremote, which the command runs as a child,
takes that one (pyserial's `exclusive`), and the two must not exclude each other.
"""

import fcntl
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from .errors import PortBusyError


def lock_dir():
    """Where the lock files are: one folder per user, shared by every state folder."""
    return Path(tempfile.gettempdir()) / f"safebench-{os.getuid()}-ports"


def lock_path(port):
    return lock_dir() / (quote(os.path.realpath(port), safe="") + ".lock")


class PortLock:
    """The lock on `port` while acquired; `holder` (default: this command line) is what a refused
    command is told."""

    def __init__(self, port, holder=None):
        self.port = port
        self.path = lock_path(port)
        self.holder = holder or " ".join(["safebench", *sys.argv[1:]])
        self._fd = None

    def acquire(self):
        """Take the lock, or raise PortBusyError naming who has it."""
        self.path.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # no O_TRUNC: the holder's line stays readable
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise PortBusyError(f"{self.port} is in use by another safebench command (pid {holder}): "
                                f"wait for it to finish, then run this again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}: {self.holder}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self):
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
