"""The simulated bench: boards (unix-port VMs on ptys, or emulated Picos running official MicroPython
images) wired to simulated modems with IoT SAFE SIMs.

Each part runs as its own background process (`safebench_simulator.board`, `safebench_simulator.modem`), so the
bench outlives the command that started it, as plugged-in hardware does; `.bench/bench.json` says
what is running where, and `down` stops exactly that.
"""

import ctypes
import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import provision
from .errors import BenchError, UnreadableFileError

STATE_FILE = "bench.json"
DEFAULT_HEAP = "256K"  # the unix-port board's when none is asked for
PARTS = ("safebench_simulator.modem", "safebench_simulator.board",  # the modules of its processes
         "safebench_simulator.rp2040.pico")
# Boards that run emulated (rp2040js): board type -> (the UART its definition opens for the modem, its modem's dialect)
EMULATED = {"pico_waveshare_sim7080g": (0, "simcom")}
FIRMWARE_RECORD = "flash.img.firmware"  # beside an emulated Pico's flash: the UF2 image it holds
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
PR_SET_PDEATHSIG = 1
log = logging.getLogger(__name__)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _die_with_parent():
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _start(argv, log_path, attached=False):
    """Start a simulator process in its own session; return its pid and the JSON line it prints when ready.

    An `attached` part is stopped by the kernel when the process that started it dies, however it dies.
    """
    log.debug("starting %r", argv)
    with open(log_path, "ab") as part_log:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=part_log, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=_die_with_parent if attached else None)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
        line = proc.stdout.readline() if ready else b""
    except BaseException:  # Ctrl-C while it starts: it is in no state file yet, so stop it here
        _stop(proc.pid)
        proc.wait()
        raise
    finally:
        proc.stdout.close()
    if not line:
        _stop(proc.pid)
        proc.wait()
        tail = Path(log_path).read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise BenchError(f"{argv[2]} did not start: {tail[0]}")
    _Reaper.adopt(proc)
    return json.loads(line)


class _Reaper:
    """Popen objects of parts started by this process, so stopping them leaves no zombies behind."""

    procs = {}

    @classmethod
    def adopt(cls, proc):
        cls.procs[proc.pid] = proc

    @classmethod
    def reap(cls, pid):
        proc = cls.procs.pop(pid, None)
        if proc:
            proc.wait()


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]
    except OSError:
        return []


def _part_home(argv):
    """The board folder (state/sim0) a simulator process works in, from its command line; None if it is
    no part of a simulated bench (a modem started by hand, anything else)."""
    if "unixboard/sim_boot.py" in " ".join(argv[:-1]):  # the VM: its last argument is the board's flash
        return Path(argv[-1]).parent
    if "rp2040/harness.js" in " ".join(argv[:2]) and "--flash" in argv[:-1]:  # the emulated Pico's chip
        return Path(argv[argv.index("--flash") + 1]).parent
    if len(argv) > 3 and argv[1] == "-m" and argv[2] in PARTS and "--link" in argv[:-1]:
        return Path(argv[argv.index("--link") + 1]).parent
    return None


def _stop(pid):
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not _alive(pid):
            break
    _Reaper.reap(pid)


class SimulatedBench:
    """The bench in `state_dir`. An `attached` bench (for test sessions) ends with the process that
    started it; a detached one (`safebench bench up`) runs until `down`, as plugged-in hardware does."""

    def __init__(self, state_dir=".bench", attached=False):
        self.dir = Path(state_dir).absolute()
        self.state_path = self.dir / STATE_FILE
        self.attached = attached

    def status(self):
        """What runs, as recorded by `up`, with each process checked to be alive."""
        try:
            state = self.recorded()
        except UnreadableFileError as e:
            raise UnreadableFileError(f"{e}: run `safebench bench down` (it finds what runs from {self.dir} "
                                      "without it)") from None
        if state is None:
            return {"up": False, "boards": []}
        for board in state["boards"]:
            board["alive"] = all(self._runs_here(pid) for pid in board["pids"].values())
            if board.get("emulated"):  # flashed through its BOOTSEL drive since `up`: the record says with what
                board["firmware"] = _held_image(Path(board["flash"]).parent) or board["firmware"]
        state["up"] = bool(state["boards"]) and all(b["alive"] for b in state["boards"])
        return state

    def recorded(self):
        """bench.json as `up` wrote it, None if there is none; a damaged one is an UnreadableFileError."""
        try:
            state = json.loads(self.state_path.read_text())
            if not all(isinstance(b["name"], str) and all(type(pid) is int for pid in b["pids"].values())
                       for b in state["boards"]):
                raise TypeError("a board without its name or process ids")
            return state
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            raise UnreadableFileError(f"the state folder {self.dir} is a file: give --state a folder") from None
        except (OSError, ValueError, KeyError, TypeError) as e:  # ValueError: not JSON; the others: not its shape
            raise UnreadableFileError(f"the simulated bench's state file {self.state_path} is damaged "
                                      f"({getattr(e, 'strerror', None) or e})") from None

    def _runs_here(self, pid):
        """True if `pid` is alive and a part of this bench (not a process that got a recorded pid again)."""
        home = _part_home(_cmdline(pid))
        return home is not None and home.parent == self.dir and _alive(pid)

    def running(self):
        """{pid: board name} of every simulator process working in this bench's folder, found by their
        command lines: what `down` stops when bench.json is gone or damaged, or a crash left behind."""
        parts = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                home = _part_home(_cmdline(entry.name))
                if home is not None and home.parent == self.dir and _alive(entry.name):
                    parts[int(entry.name)] = home.name
        return parts

    def up(self, heap=None, modem=None, card=None, boards=1, dialect=None, progress=None, board_type=None,
           firmware=None):
        """Start `boards` simulated boards, each with a simulated modem (or wired to `modem`, a port).

        `card`: the card image for the modem; it must exist (`safebench card new` makes one). Without it
        each board gets a new card in its folder. `board_type`: one of EMULATED for emulated Picos running
        `firmware` (default: the v1.28.0 image of the images folder); default the unix port.
        `heap`: the unix-port board's (default DEFAULT_HEAP). `dialect`: the simulated modem's (default: the
        board's). `progress(text)` hears each stage."""
        if heap is not None and board_type is not None:
            raise BenchError("an emulated Pico has the heap its MicroPython image gives it: no heap for it")
        heap = heap or DEFAULT_HEAP
        if board_type is not None and board_type not in EMULATED:
            raise BenchError(f"no emulated board of type {board_type}: one of {', '.join(EMULATED)}")
        images = emulated_images(firmware) if board_type else None
        if card is not None and not Path(card).is_file():
            raise BenchError(f"no card image at {card}: make one with `safebench card new --out {card}`, "
                             "or leave out --card for a new card")
        if self.status()["boards"]:
            raise BenchError(f"a bench is already up in {self.dir}: run `safebench bench down` first")
        self.dir.mkdir(parents=True, exist_ok=True)
        state = {"boards": []}
        try:
            for i in range(boards):
                state["boards"].append(self._start_board(f"sim{i}", heap, modem, card, dialect, progress,
                                                         board_type, images))
                self._save(state)
        except BaseException:
            self._stop_all(state)
            raise
        return self.status()

    def _start_board(self, name, heap, modem, card, dialect=None, progress=None, board_type=None, images=None):
        home = self.dir / name
        home.mkdir(exist_ok=True)
        board = {"name": name, "type": board_type or "unix_sim", "heap": heap, "flash": str(home / "flash"),
                 "pids": {}, "log": str(home / "bench.log"),
                 "dialect": dialect or (EMULATED[board_type][1] if board_type else "generic")}
        if board_type:
            board.update(emulated=True, heap=None, flash=str(home / "flash.img"))
            image, _, chosen = images
            board["firmware"] = _flashed_image(home, image, chosen)
        try:
            return self._start_parts(board, home, modem, card, progress or (lambda text: None), images)
        except BaseException:
            self._stop_all({"boards": [board]})
            raise

    def _start_parts(self, board, home, modem, card, progress, images=None):
        py, pids, heap, name = sys.executable, board["pids"], board["heap"], board["name"]
        if modem is None:
            card_path = Path(card).absolute() if card else home / "card.json"
            if not card_path.exists():
                progress(f"{name}: making a new SIM card image, its certificate from the CA in {self.dir / 'ca'}")
                provision.new_sim_card(card_path, self.dir / "ca")
            trace = home / "trace.jsonl"
            progress(f"{name}: starting the simulated modem ({board['dialect']}) with the SIM {card_path}")
            m = _start([py, "-m", "safebench_simulator.modem", "--card", str(card_path), "--link", str(home / "modem"),
                        "--trace", str(trace), "--dialect", board["dialect"]], board["log"], self.attached)
            pids["modem"] = m["pid"]
            board.update(card=str(card_path), trace=str(trace), modem_control=m.get("control"))
            modem = m["port"]
        board["modem"] = modem
        if board.get("emulated"):
            return self._start_pico(board, home, modem, images[1], progress)
        progress(f"{name}: starting the board (MicroPython unix port, heap {heap}), its UART 1 on {modem}")
        b = _start([py, "-m", "safebench_simulator.board", "--flash", board["flash"], "--link", str(home / "tty"),
                    "--uart1", modem, "--heap", heap, "--log", board["log"], "--modem-dialect", board["dialect"]],
                   board["log"], self.attached)
        pids["board"] = b["pid"]
        board.update(port=b["link"], device=b["port"])
        return board

    def _start_pico(self, board, home, modem, bootrom, progress):
        uart = EMULATED[board["type"]][0]
        progress(f"{board['name']}: starting the emulated Pico ({Path(board['firmware']).name}), its UART {uart} "
                 f"on {modem}")
        b = _start([sys.executable, "-m", "safebench_simulator.rp2040.pico", "--bootrom", str(bootrom),
                    "--flash", board["flash"], "--firmware", board["firmware"], "--link", str(home / "tty"),
                    f"--uart{uart}", modem], board["log"], self.attached)
        board["pids"]["board"] = b["pid"]
        board.update(port=b["link"], device=b["port"])
        return board

    def down(self):
        """Stop everything `up` started; returns the names of the boards stopped. The processes are found
        by their command lines too, so a damaged or lost bench.json still stops them all."""
        try:
            state = self.recorded() or {"boards": []}
        except UnreadableFileError:
            state = {"boards": []}
        names = {b["name"]: None for b in state["boards"]}
        self._stop_all(state)
        for pid, name in self.running().items():
            names[name] = None
            _stop(pid)
        if self.dir.is_dir():
            self.state_path.unlink(missing_ok=True)
        return list(names)

    def _stop_all(self, state):
        for board in state["boards"]:
            for pid in board["pids"].values():
                if self._runs_here(pid):
                    _stop(pid)

    def _save(self, state):
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, self.state_path)

    def bootsel_root(self, port):
        """The folder where the emulated Pico on `port` (its link or its pty) shows its BOOTSEL drive when
        machine.bootloader() runs (the harness makes RPI-RP2 in its board folder); None if no emulated
        board of this bench is on `port`, or there is no readable bench here."""
        try:
            boards = self.status()["boards"]
        except UnreadableFileError:
            return None
        wanted = os.path.realpath(port)
        for b in boards:
            if b.get("emulated") and wanted in {os.path.realpath(b["port"]), b.get("device")}:
                return Path(b["flash"]).parent
        return None

    def board(self, name=None):
        """The running board called `name` (default: the first one)."""
        state = self.status()
        for b in state["boards"]:
            if name in (None, b["name"]):
                if not b["alive"]:
                    raise BenchError(f"board {b['name']} of the bench in {self.dir} is not running")
                return b
        raise BenchError(f"no simulated board {name + ' ' if name else ''}is up in {self.dir}: run `safebench bench up`")


def emulated_images(firmware=None):
    """(MicroPython image, boot ROM, whether `firmware` chose the image) for an emulated Pico: `firmware`
    (a UF2 file, or a release such as 1.22.0 whose image is in the images folder), else the v1.28.0 image
    of the images folder ($SAFEBENCH_RP2040_IMAGES, else the cache that `python -m
    safebench_simulator.rp2040.images seed|fetch` fills); the B1 boot ROM always from that folder."""
    from safebench_simulator.rp2040 import images
    from safebench_simulator.rp2040.pico import harness_missing

    missing = harness_missing()
    if missing:
        raise BenchError(f"cannot emulate a Pico here: {missing}")
    folder, how = images.folder(), "python -m safebench_simulator.rp2040.images fetch (or seed DIR)"
    release = re.fullmatch(r"v?(\d+\.\d+\.\d+)", firmware or "")  # a release's image of the folder
    image = images.release_image(release[1]) if release else Path(firmware) if firmware else images.release_image()
    if image is None or not image.is_file():
        wanted = f"v{release[1]}" if release else f"v{images.DEFAULT_RELEASE}"
        raise BenchError(f"no MicroPython image for the emulated Pico at {image or folder}: give --firmware, or "
                         f"put the {wanted} image there: {how}")
    if not (folder / images.BOOTROM).is_file():
        raise BenchError(f"no RP2040 boot ROM at {folder / images.BOOTROM}: {how}")
    return image.absolute(), (folder / images.BOOTROM).absolute(), bool(firmware)


def _flashed_image(home, image, chosen):
    """The image the board's flash holds: `image` for a new flash, else the one it was made from (the flash
    persists across down and up, as a real board keeps what was flashed onto it); a `chosen` image other
    than that one is refused rather than silently not run."""
    record, flash = home / FIRMWARE_RECORD, home / "flash.img"
    if flash.exists() and record.exists():
        held = record.read_text().strip()
        if chosen and held != str(image):
            raise BenchError(f"the flash of {home.name} ({flash}) holds {Path(held).name}: remove it to start "
                             f"from {image.name}")
        return held
    record.write_text(f"{image}\n")
    return str(image)


def _held_image(home):
    """The image the emulated Pico's flash was last made from or flashed with (its harness keeps the record)."""
    try:
        return (home / FIRMWARE_RECORD).read_text().strip() or None
    except OSError:
        return None
