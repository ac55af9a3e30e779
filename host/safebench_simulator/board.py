"""A simulated MicroPython board: the real unix-port VM behind a pty that looks like a board's USB serial.

The unix port ends its process where a board reboots (Ctrl-D, `machine.soft_reset()`, `sys.exit()`), so
this supervisor owns the client-facing pty for the board's whole life and starts a new VM whenever the
old one exits, printing what a board prints. It also decides what Ctrl-C means, as a board's USB IRQ
does: a KeyboardInterrupt while code runs, a plain byte otherwise. The VM's flash is a host folder;
its UARTs are ptys named by `--uart1 PATH` (the simulated modem).

    python -m safebench_simulator.board --flash DIR [--link PATH] [--uart1 PORT] [--heap 64K]

prints one JSON line with the port, then serves until SIGTERM.
"""

import argparse
import ctypes
import json
import os
import pty
import re
import select
import shutil
import signal
import sys
import termios
import time
import tty
from pathlib import Path

UNIXBOARD = Path(__file__).with_name("unixboard")
HARD_RESET_EXIT = 99  # unixboard/machine.py: machine.reset()
RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"
FRIENDLY_BANNER = b'Type "help()" for more information.'
BANNER_START = b"MicroPython "
PR_SET_PDEATHSIG = 1
INTERRUPT_WAIT = 0.5  # s; longest wait for the VM to act on a Ctrl-C


def silicon_id(flash) -> bytes:
    """The board's unique ID (machine.unique_id(), 8 bytes as an RP2040's flash has): made at random the first
    time and kept beside its flash folder (not in it: the firmware cannot change it), as silicon keeps its own."""
    path = Path(f"{Path(flash)}.id")
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        made = os.urandom(8)
        path.write_text(made.hex() + "\n")
        return made


def heapsize_arg(heap):
    """`64K` (KB of a 32-bit board) -> `64wK`, the unix port's 32-bit-equivalent heap size."""
    m = re.fullmatch(r"(\d+)([KM])", heap.strip().upper())
    if not m:
        raise ValueError(f"heap must look like 64K or 1M, not {heap!r}")
    return f"{m.group(1)}w{m.group(2)}"


def micropython_command():
    exe = Path(sys.executable).with_name("micropython")
    return str(exe) if exe.exists() else shutil.which("micropython") or "micropython"


def die_with_parent():
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _sigint_caught(pid):
    """True while the VM runs code with Ctrl-C enabled (it then has a SIGINT handler installed)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    except OSError:
        pass
    return False


class Vm:
    """One run of the MicroPython VM on its own pty, from power-on (or reboot) to exit."""

    def __init__(self, flash, heap, uarts, boot, modem_dialect="generic"):
        env = dict(os.environ, SAFEBENCH_FLASH=str(flash), SAFEBENCH_BOOT=boot, MICROPYPATH=str(UNIXBOARD),
                   SAFEBENCH_MODEM=modem_dialect, SAFEBENCH_BOARD_ID=silicon_id(flash).hex())
        for n, port in uarts.items():
            env[f"SAFEBENCH_UART{n}"] = port
        argv = [micropython_command(), "-X", f"heapsize={heapsize_arg(heap)}", "-i",
                str(UNIXBOARD / "sim_boot.py"), str(flash)]  # the flash folder names the board in `ps`
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                die_with_parent()
                make_raw(0)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)

    def read(self):
        try:
            return os.read(self.fd, 4096)
        except OSError:
            return b""

    def write(self, data):
        os.write(self.fd, data)

    def wait(self):
        os.close(self.fd)
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.wait()


def make_raw(fd):
    """A board's USB serial has no line discipline: no echo, no signals, no newline translation."""
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[6][termios.VMIN] = 1
    attrs[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


class BoardSupervisor:
    """Keeps the board's serial port up across VM lifetimes and emulates a board's reboots."""

    def __init__(self, flash, heap="256K", uarts=None, link=None, log=None, modem_dialect="generic"):
        self.flash, self.heap, self.uarts = Path(flash), heap, dict(uarts or {})
        self.modem_dialect = modem_dialect
        self.flash.mkdir(parents=True, exist_ok=True)
        self.client, slave = pty.openpty()
        make_raw(slave)
        self._slave = slave  # kept open so the client closing its end never gives us EIO
        self.port = os.ttyname(slave)
        self.link = Path(link) if link else None
        if self.link:
            self.link.unlink(missing_ok=True)
            self.link.symlink_to(self.port)
        self.log = log
        self.raw = False  # the VM is in the raw REPL (tracked from what it prints)
        self.pending = b""  # client bytes held back while the VM reboots into the raw REPL
        self.booting_raw = False
        self.seen_banner = False
        self.tail = b""
        self.last_out = b"\n"
        self.vm = Vm(self.flash, heap, self.uarts, "hard", modem_dialect)

    def note(self, msg):
        if self.log:
            print(f"{time.strftime('%H:%M:%S')} board: {msg}", file=self.log, flush=True)

    def serve(self):
        while True:
            ready, _, _ = select.select([self.client, self.vm.fd], [], [])
            if self.client in ready:
                self.from_client(os.read(self.client, 4096))
            if self.vm.fd in ready:
                data = self.vm.read()
                if data:
                    self.from_vm(data)
                else:
                    self.reboot()

    def from_client(self, data):
        if self.booting_raw:
            self.pending += data
            return
        while b"\x03" in data:
            before, _, data = data.partition(b"\x03")
            if before:
                self.vm.write(before)
            if _sigint_caught(self.vm.pid):
                os.kill(self.vm.pid, signal.SIGINT)
                self._await_interrupt()
            else:
                self.vm.write(b"\x03")
        if data:
            self.vm.write(data)

    def _await_interrupt(self):
        # A board takes Ctrl-C in its USB interrupt, before it reads what follows; the VM needs a moment
        # to raise KeyboardInterrupt, and bytes written before that would go to the code being stopped.
        deadline = time.monotonic() + INTERRUPT_WAIT
        while _sigint_caught(self.vm.pid) and time.monotonic() < deadline:
            time.sleep(0.005)

    def from_vm(self, data):
        self.tail = (self.tail + data)[-80:]
        if RAW_PROMPT in self.tail:
            self.raw = True
        elif FRIENDLY_BANNER in self.tail:
            self.raw = False
        if self.booting_raw:
            self.swallow_raw_boot(data)
        else:
            self.to_client(data)

    def swallow_raw_boot(self, data):
        """After a raw-mode reboot a board shows boot.py's output, then the raw prompt, never a banner."""
        before, start, _ = data.partition(BANNER_START)
        if not self.seen_banner:
            self.to_client(before)
            self.seen_banner = bool(start)
        if self.seen_banner and self.tail.endswith(b">>> "):
            self.tail = b""
            self.booting_raw = False
            self.vm.write(b"\x01")
            held, self.pending = self.pending, b""
            if held:
                self.vm.write(held)

    def to_client(self, data):
        # Boards send \r\n for print(); the unix port sends a bare \n.
        if not data:
            return
        out = re.sub(rb"(?<!\r)\n", b"\r\n", data)
        if data[:1] == b"\n" and self.last_out == b"\r":
            out = out[1:]  # its \r came at the end of the previous chunk
        self.last_out = data[-1:]
        os.write(self.client, out)

    def reboot(self):
        code = self.vm.wait()
        if code == HARD_RESET_EXIT:
            boot = "hard"
        elif self.raw:
            boot = "raw"
        else:
            boot = "soft"
        self.note(f"vm exited ({code}); {boot} reboot")
        if boot != "hard":
            self.to_client(b"MPY: soft reboot\r\n")
        self.raw = False
        self.tail = b""
        self.booting_raw = boot == "raw"
        self.seen_banner = False
        self.vm = Vm(self.flash, self.heap, self.uarts, boot, self.modem_dialect)

    def close(self):
        self.vm.kill()
        if self.link:
            self.link.unlink(missing_ok=True)
        os.close(self.client)
        os.close(self._slave)


def main(argv=None):
    from .dialects import DIALECTS

    ap = argparse.ArgumentParser(prog="python -m safebench_simulator.board", description=__doc__.splitlines()[0])
    ap.add_argument("--flash", required=True, help="folder that is the board's flash")
    ap.add_argument("--link", help="symlink to create to the board's serial port")
    ap.add_argument("--uart1", help="serial port wired to the board's UART 1 (the modem)")
    ap.add_argument("--heap", default="256K", help="heap of a 32-bit board, e.g. 64K (default 256K)")
    ap.add_argument("--log", help="file to log reboots to")
    ap.add_argument("--modem-dialect", default="generic", choices=list(DIALECTS),
                    help="what the board's modem speaks (default generic)")
    args = ap.parse_args(argv)
    try:
        heapsize_arg(args.heap)
    except ValueError as e:
        ap.error(str(e))
    log = open(args.log, "a") if args.log else None
    board = BoardSupervisor(args.flash, args.heap, {1: args.uart1} if args.uart1 else {}, args.link, log,
                            args.modem_dialect)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve_until_stopped(board)


def serve_until_stopped(board, **announced):
    """A supervisor's life: its ready line on stdout (JSON: port, link, pid and `announced`), which the
    bench reads, then serve until SIGTERM or Ctrl-C, closing the board either way."""
    print(json.dumps({"port": board.port, "link": str(board.link) if board.link else None, "pid": os.getpid(),
                      **announced}), flush=True)
    try:
        board.serve()
    except KeyboardInterrupt:
        pass
    finally:
        board.close()


if __name__ == "__main__":
    main()
