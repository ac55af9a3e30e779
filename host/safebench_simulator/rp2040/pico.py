"""An emulated Raspberry Pi Pico behind a pty that behaves like its USB serial (``/dev/ttyACM*``).

The Node harness (``harness.js``, rp2040js) runs the official MicroPython image from the board's flash
image and carries the USB CDC's bytes on its stdin/stdout; this supervisor moves them to and from a
pty. Bytes from the client are read from the pty only as fast as the harness takes them, and the
harness hands the guest only what its endpoint asks for, so a fast writer is slowed, never dropped.

    python -m safebench_simulator.rp2040.pico --bootrom B1.bin --flash FLASH.img [--firmware IMAGE.uf2]
        [--link PATH] [--uart0 PORT|pty] [--uart1 PORT|pty]

prints one JSON line with the port (and each UART's, "pty" making a new one) once the board's USB is
up, then serves until SIGTERM. A UART's bytes cross at its baud rate in the emulator's time
(``uart_line.js``); the line itself has no flow control, as a real one has none.
"""

import argparse
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from ..board import die_with_parent, make_raw, serve_until_stopped
from ..link import Uart, make_link, read_available, remove_link

HARNESS = Path(__file__).with_name("harness.js")
READY = b"ready"
UART_BAUD = 115200  # a real serial port wired to a UART: the firmware's rate, set on the port
BOOT_TIMEOUT = 10.0  # s; both official images enumerate in well under a second


class EmulatorError(RuntimeError):
    """The harness could not start the emulated Pico (its stderr says why)."""


def node_command():
    return shutil.which("node") or "node"


def harness_missing():
    """Why the harness cannot run here, or None when node and rp2040js are installed."""
    if not shutil.which("node"):
        return "node is not installed (make installs Debian's nodejs)"
    if not (HARNESS.parent / "node_modules" / "rp2040js" / "package.json").exists():
        return f"rp2040js is not installed in {HARNESS.parent / 'node_modules'} (make runs npm ci there)"
    return None


class Harness:
    """One run of the Node harness: the emulated chip from power-on to exit."""

    def __init__(self, bootrom, flash, firmware=None, uarts=()):
        argv = [node_command(), str(HARNESS), "--bootrom", str(bootrom), "--flash", str(flash)]
        if firmware:
            argv += ["--uf2", str(firmware)]
        self.uarts, theirs = {}, []  # UART number -> our end of its stream socket
        for n in uarts:
            ours, their = socket.socketpair()
            ours.setblocking(False)
            self.uarts[n] = ours
            theirs.append(their)
            argv += [f"--uart{n}", str(their.fileno())]
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, preexec_fn=die_with_parent,
                                        pass_fds=[their.fileno() for their in theirs])
        for their in theirs:
            their.close()
        self.stdin, self.stdout, self.stderr = (f.fileno() for f in
                                                (self.process.stdin, self.process.stdout, self.process.stderr))
        for fd in (self.stdin, self.stdout, self.stderr):
            os.set_blocking(fd, False)
        self.status = b""

    def await_ready(self, timeout=BOOT_TIMEOUT):
        while READY not in self.status.splitlines():
            ready, _, _ = select.select([self.stderr], [], [], timeout)
            data = os.read(self.stderr, 4096) if ready else b""
            if not data:
                self.stop()
                raise EmulatorError(f"the emulated Pico did not start: {self.status.decode(errors='replace')}")
            self.status += data

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for f in (self.process.stdin, self.process.stdout, self.process.stderr, *self.uarts.values()):
            f.close()


class PicoSupervisor:
    """Keeps the Pico's serial port up and shuttles bytes between it and the harness."""

    def __init__(self, bootrom, flash, firmware=None, link=None, uarts=None):
        """``uarts``: UART number -> the serial port wired to it, or "pty" for a new pty."""
        self.usb = Uart.pty()
        make_raw(self.usb.keep_fd)
        self.port = self.usb.name
        self.link = Path(link) if link else None
        self.lines = {n: Uart.pty() if port == "pty" else Uart.open(port, UART_BAUD)
                      for n, port in (uarts or {}).items()}
        self.harness = Harness(bootrom, flash, firmware, self.lines)
        self.wires = [_Wire(self.harness.uarts[n], line.fd) for n, line in self.lines.items()]
        self.harness.await_ready()
        self.to_guest = b""
        if self.link:
            make_link(self.link, self.port)
        self.to_client = b""

    def serve(self):
        harness = self.harness
        while True:  # until the harness's stdout ends: what it sent before exiting still reaches the client
            readable = [harness.stdout, harness.stderr] + ([] if self.to_guest else [self.usb.fd])
            writable = ([harness.stdin] if self.to_guest else []) + ([self.usb.fd] if self.to_client else [])
            for wire in self.wires:
                readable += wire.readable()
                writable += wire.writable()
            readable, writable, _ = select.select(readable, writable, [], 1.0)
            for wire in self.wires:
                wire.service(readable, writable)
            if self.usb.fd in readable:
                self.to_guest += read_available(self.usb.fd)
            if harness.stdout in readable:
                data = os.read(harness.stdout, 65536)
                if not data:
                    break
                self.to_client += data
            if harness.stderr in readable:
                os.read(harness.stderr, 4096)  # status lines ("flash saved")
            if harness.stdin in writable:
                self.to_guest = self.to_guest[_write(harness.stdin, self.to_guest):]
            if self.usb.fd in writable:
                self.to_client = self.to_client[_write(self.usb.fd, self.to_client):]

    def close(self):
        self.harness.stop()
        if self.link:
            remove_link(self.link, self.port)
        for line in (self.usb, *self.lines.values()):
            line.close()


class _Wire:
    """Bytes both ways between a UART's stream socket (the harness) and its serial port. When the port
    goes away (its modem stopped or unplugged), the UART's line is silent and what the guest sends is
    lost, as on a Pico whose modem is gone: the board itself runs on."""

    def __init__(self, sock, fd):
        self.sock, self.fd = sock, fd
        self.to_port = self.to_uart = b""

    def readable(self):
        return [fd for fd, held in ((self.sock, self.to_port), (self.fd, self.to_uart)) if not held and fd is not None]

    def writable(self):
        return [fd for fd, held in ((self.fd, self.to_port), (self.sock, self.to_uart)) if held and fd is not None]

    def service(self, readable, writable):
        if self.sock in readable:
            try:
                self.to_port += self.sock.recv(65536)
            except BlockingIOError:
                pass
            if self.fd is None:
                self.to_port = b""
        try:
            if self.fd in readable:
                self.to_uart += read_available(self.fd)
            if self.fd in writable:
                self.to_port = self.to_port[_write(self.fd, self.to_port):]
        except OSError:  # ENODEV, EIO: the port went away
            self.fd, self.to_port = None, b""
        if self.sock in writable:
            self.to_uart = self.to_uart[_write(self.sock.fileno(), self.to_uart):]


def _write(fd, data):
    try:
        return os.write(fd, data)
    except BlockingIOError:
        return 0
    except BrokenPipeError:  # the harness is exiting: what it was sent is lost with it
        return len(data)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m safebench_simulator.rp2040.pico",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--bootrom", required=True, help="the RP2040 B1 boot ROM (16 KiB)")
    ap.add_argument("--flash", required=True, help="the board's flash image; made from --firmware when missing")
    ap.add_argument("--firmware", help="MicroPython UF2 image to flash when the flash image does not exist")
    ap.add_argument("--link", help="symlink to create to the board's serial port")
    for n in (0, 1):
        ap.add_argument(f"--uart{n}", help=f"serial port wired to UART {n}, or 'pty' for a new pty")
    args = ap.parse_args(argv)
    uarts = {n: port for n, port in ((0, args.uart0), (1, args.uart1)) if port}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        board = PicoSupervisor(args.bootrom, args.flash, args.firmware, args.link, uarts)
    except EmulatorError as e:
        sys.exit(str(e))
    serve_until_stopped(board, **{f"uart{n}": line.name for n, line in board.lines.items()})


if __name__ == "__main__":
    main()
