"""The simulated modem's UART: a pty (or a real serial port) and the loop that serves it.

``serve`` shuttles bytes between the port and a ``Modem`` with one ``select`` over the port, the
modem's TCP sockets and its fault-control socket. Output goes through an ``Outbox`` of timed
chunks, so a delayed, split or real-time reply never blocks input, and order is always kept.
"""

from __future__ import annotations

import errno
import os
import select
import termios
import time
import tty
from collections import deque
from pathlib import Path


class Uart:
    """The modem's end of the serial line: a file descriptor and the name clients open."""

    def __init__(self, fd: int, name: str, keep_fd: int | None = None):
        self.fd, self.name, self.keep_fd = fd, name, keep_fd
        os.set_blocking(fd, False)  # a client that stops reading must not block us

    @classmethod
    def pty(cls) -> Uart:
        """A new pty pair; we keep the slave open so clients may close and reopen the port."""
        master, slave = os.openpty()
        tty.setraw(slave)
        return cls(master, os.ttyname(slave), keep_fd=slave)

    @classmethod
    def open(cls, path: str, baud: int) -> Uart:
        """A real serial port, raw 8N1 without flow control at ``baud``."""
        speed = getattr(termios, f"B{baud}", None)
        if speed is None:
            raise ValueError(f"unsupported baud rate {baud}")
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            tty.setraw(fd)
            attrs = termios.tcgetattr(fd)
            attrs[2] = (attrs[2] & ~(termios.CSTOPB | termios.PARENB | termios.CRTSCTS)) | termios.CLOCAL | termios.CREAD
            attrs[4] = attrs[5] = speed
            termios.tcsetattr(fd, termios.TCSANOW, attrs)
            termios.tcflush(fd, termios.TCIOFLUSH)
        except (OSError, termios.error) as e:
            os.close(fd)
            raise OSError(f"{path}: not a serial port ({e})") from e
        return cls(fd, path)

    def close(self) -> None:
        for fd in (self.fd, self.keep_fd):
            if fd is not None:
                os.close(fd)
        self.fd = self.keep_fd = None


class Outbox:
    """Bytes waiting to go out, each chunk not before its due time (monotonic seconds)."""

    def __init__(self) -> None:
        self._chunks: deque[list] = deque()  # [due, bytes]

    def add(self, chunks: list[tuple[float, bytes]], now: float) -> None:
        due = max(now, self._chunks[-1][0]) if self._chunks else now
        for delay, data in chunks:
            due += delay
            if data:
                self._chunks.append([due, bytes(data)])

    def ready(self, now: float) -> bool:
        return bool(self._chunks) and self._chunks[0][0] <= now

    def timeout(self, now: float) -> float | None:
        """Seconds until the next chunk is due; None when nothing waits."""
        return max(0.0, self._chunks[0][0] - now) if self._chunks else None

    def write(self, fd: int) -> None:
        head = self._chunks[0]
        try:
            written = os.write(fd, head[1])
        except BlockingIOError:
            return
        head[1] = head[1][written:]
        if not head[1]:
            self._chunks.popleft()


def serve(modem, uart: Uart, control=None) -> None:
    """Serve ``modem`` on ``uart`` (and ``control`` requests) until interrupted."""
    outbox = Outbox()
    outbox.add([(0.0, modem.startup())], time.monotonic())
    while True:
        now = time.monotonic()
        sockets = modem.waiting_sockets()
        controls = control.sockets() if control else []
        ready = outbox.ready(now)
        readable, writable, _ = select.select([uart.fd, *sockets, *controls], [uart.fd] if ready else [], [],
                                              None if ready else outbox.timeout(now))
        now = time.monotonic()
        if uart.fd in readable:
            data = read_available(uart.fd)
            if data:
                outbox.add(modem.receive(data), now)
        if any(s in readable for s in sockets):
            outbox.add(modem.poll(), now)
        if control and any(s in readable for s in controls):
            control.service(readable)
            outbox.add(modem.poll(), now)  # URCs of what the request did
        if writable and outbox.ready(now):
            outbox.write(uart.fd)


def read_available(fd: int) -> bytes:
    """What the pty `fd` has now, b"" if nothing (never blocks)."""
    try:
        data = os.read(fd, 4096)
    except BlockingIOError:
        return b""
    except OSError as e:
        if e.errno != errno.EIO:  # EIO: a pty with no slave open; we hold one, but be safe
            raise
        time.sleep(0.05)
        return b""
    if not data:
        raise OSError(errno.ENODEV, "the serial port went away")
    return data


def make_link(link: Path, target: str) -> None:
    """Point ``link`` at ``target``, replacing an old symlink atomically; never a real file."""
    if os.path.lexists(link) and not link.is_symlink():
        raise FileExistsError(f"{link} exists and is not a symlink")
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    os.symlink(target, tmp)
    os.replace(tmp, link)


def remove_link(link: Path, target: str) -> None:
    if link.is_symlink() and os.readlink(link) == target:  # leave a link someone else re-pointed
        link.unlink()
