"""The simulated bench: boards (unix-port VMs on ptys) wired to simulated modems with IoT SAFE SIMs.

Each part runs as its own background process (`safebench_simulator.board`, `safebench_simulator.modem`), so the
bench outlives the command that started it, as plugged-in hardware does; `.bench/bench.json` says
what is running where, and `down` stops exactly that.
"""

import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import provision
from .errors import BenchError

STATE_FILE = "bench.json"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
PR_SET_PDEATHSIG = 1


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
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
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
        if not self.state_path.exists():
            return {"up": False, "boards": []}
        state = json.loads(self.state_path.read_text())
        for board in state["boards"]:
            board["alive"] = all(_alive(pid) for pid in board["pids"].values())
        state["up"] = bool(state["boards"]) and all(b["alive"] for b in state["boards"])
        return state

    def up(self, heap="256K", modem=None, card=None, boards=1, dialect="generic"):
        """Start `boards` simulated boards, each with a simulated modem (or wired to `modem`, a port)."""
        if self.status()["boards"]:
            raise BenchError(f"a bench is already up in {self.dir}: run `safebench bench down` first")
        self.dir.mkdir(parents=True, exist_ok=True)
        state = {"boards": []}
        try:
            for i in range(boards):
                state["boards"].append(self._start_board(f"sim{i}", heap, modem, card, dialect))
                self._save(state)
        except BaseException:
            self._stop_all(state)
            raise
        return self.status()

    def _start_board(self, name, heap, modem, card, dialect="generic"):
        home = self.dir / name
        home.mkdir(exist_ok=True)
        board = {"name": name, "type": "unix_sim", "heap": heap, "flash": str(home / "flash"), "pids": {},
                 "log": str(home / "bench.log"), "dialect": dialect}
        try:
            return self._start_parts(board, home, modem, card)
        except BaseException:
            self._stop_all({"boards": [board]})
            raise

    def _start_parts(self, board, home, modem, card):
        py, pids, heap = sys.executable, board["pids"], board["heap"]
        if modem is None:
            card_path = Path(card).absolute() if card else home / "card.json"
            if not card_path.exists():
                provision.new_sim_card(card_path, self.dir / "ca")
            trace = home / "trace.jsonl"
            m = _start([py, "-m", "safebench_simulator.modem", "--card", str(card_path), "--link", str(home / "modem"),
                        "--trace", str(trace), "--dialect", board["dialect"]], board["log"], self.attached)
            pids["modem"] = m["pid"]
            board.update(card=str(card_path), trace=str(trace), modem_control=m.get("control"))
            modem = m["port"]
        board["modem"] = modem
        b = _start([py, "-m", "safebench_simulator.board", "--flash", board["flash"], "--link", str(home / "tty"),
                    "--uart1", modem, "--heap", heap, "--log", board["log"], "--modem-dialect", board["dialect"]],
                   board["log"], self.attached)
        pids["board"] = b["pid"]
        board.update(port=b["link"], device=b["port"])
        return board

    def down(self):
        """Stop everything `up` started; returns the names of the boards stopped."""
        if not self.state_path.exists():
            return []
        state = json.loads(self.state_path.read_text())
        self._stop_all(state)
        self.state_path.unlink(missing_ok=True)
        return [b["name"] for b in state["boards"]]

    def _stop_all(self, state):
        for board in state["boards"]:
            for pid in board["pids"].values():
                _stop(pid)

    def _save(self, state):
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, self.state_path)

    def board(self, name=None):
        """The running board called `name` (default: the first one)."""
        state = self.status()
        for b in state["boards"]:
            if name in (None, b["name"]):
                if not b["alive"]:
                    raise BenchError(f"board {b['name']} of the bench in {self.dir} is not running")
                return b
        raise BenchError(f"no simulated board {name or ''} is up in {self.dir}: run `safebench bench up`")
