"""A lab of many machines on labgrid (docs/lab.md): each lab host's boards published by a labgrid exporter,
reserved as places through a labgrid coordinator, reached from any machine over the network.

labgrid runs in a venv of its own (`make lab-venv`: `.venv-lab`, pinned in `requirements.txt` here), because it
brings a fork of pyserial that would replace the rig's; the rig drives its programs (`labgrid-coordinator`,
`labgrid-exporter`, `labgrid-client`) as processes. What the rig needs of a place, the address of its board's
serial port, comes back as an `rfc2217://` URL that `Device` and mpremote open like a local port.
"""

import os
import re
import subprocess
from pathlib import Path

from ..errors import LabError

LAB_BIN = Path(__file__).resolve().parents[3] / ".venv-lab" / "bin"  # made by `make lab-venv`
SPEED = 115200


def program(name):
    """The path of a labgrid program of the lab venv; LabError when the venv was not made."""
    path = LAB_BIN / name
    if not path.exists():
        raise LabError(f"labgrid is not installed: {path} is missing (make lab-venv)")
    return str(path)


def exporter_config(boards):
    """The exporter configuration (a dict for YAML) publishing `boards` (bench status records): each board a
    resource group named after it, its serial console a RawSerialPort that the exporter serves with ser2net. A
    simulated board's port is its pty (labgrid exports only device nodes: the /dev/pts path, not the link)."""
    config = {}
    for b in boards:
        device = b.get("device") or os.path.realpath(b["port"])
        config[b["name"]] = {"RawSerialPort": {"port": device, "speed": SPEED}}
    return config


def tags(board):
    """The place tags a board gets (`labgrid-client set-tags`): its type, modem dialect and card profile."""
    out = {"type": board["type"]}
    if board.get("dialect"):
        out["dialect"] = board["dialect"]
    if board.get("profile"):
        out["profile"] = board["profile"]
    return out


class Client:
    """`labgrid-client` against the coordinator at `coordinator` (HOST:PORT), as the user `user` (labgrid's
    LG_USERNAME: who holds a place)."""

    def __init__(self, coordinator, user=None, timeout=60.0):
        self.coordinator, self.timeout = coordinator, timeout
        self.env = dict(os.environ, **({"LG_USERNAME": user} if user else {}))

    def run(self, *args, place=None):
        cmd = [program("labgrid-client"), "-x", self.coordinator, *(["-p", place] if place else []), *args]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=self.timeout, env=self.env)
        except subprocess.TimeoutExpired:
            raise LabError(f"labgrid-client {' '.join(args)}: no answer from the coordinator {self.coordinator} "
                           f"in {self.timeout:g} s") from None
        if done.returncode:
            said = (done.stderr.strip() or done.stdout.strip()).splitlines()
            raise LabError(f"labgrid-client {' '.join(args)}{' on ' + place if place else ''}: "
                           f"{said[-1] if said else 'failed'}")
        return done.stdout

    def add_place(self, name, match, place_tags=None):
        """A place for the resources `match` (exporter/group/class/name, globs allowed), tagged."""
        self.run("create", place=name)
        self.run("add-match", match, place=name)
        if place_tags:
            self.run("set-tags", *(f"{k}={v}" for k, v in place_tags.items()), place=name)

    def acquire(self, place):
        """Lock `place` for this user; LabError if someone holds it."""
        self.run("acquire", place=place)

    def reserve(self, place_tags):
        """A place with all `place_tags` ({key: value}), reserved by the coordinator for this user alone, waiting
        until one is free: its name for the other methods ("+TOKEN"), to be acquired."""
        said = self.run("reserve", "--wait", "--shell", *(f"{k}={v}" for k, v in place_tags.items()))
        token = re.search(r"LG_TOKEN=(\w+)", said)
        if not token:
            raise LabError(f"labgrid-client reserve answered no token: {said.strip()[:200]}")
        return "+" + token[1]

    def name_of(self, place):
        """The name of a place given as "+TOKEN" (a reservation), or the name itself."""
        if not place.startswith("+"):
            return place
        shown = self.run("show", place=place)
        found = re.search(r"Place '([^']+)'", shown)
        return found[1] if found else place

    def give_back(self, place):
        """Release `place`, and cancel its reservation when it was reserved ("+TOKEN"): the place is free for the
        next run. What fails is returned in words, not raised (this runs on the way out, after a failure too)."""
        steps = [lambda: self.run("release", place=place)]
        if place.startswith("+"):
            steps.append(lambda: self.run("cancel-reservation", place[1:]))
        problems = []
        for step in steps:
            try:
                step()
            except LabError as e:
                problems.append(str(e))
        return problems

    def release(self, place):
        self.run("release", place=place)

    def serial_url(self, place):
        """The rfc2217:// URL of the acquired place's serial port. `ign_set_control`: a pty behind ser2net has no
        modem lines to acknowledge."""
        shown = self.run("show", place=place)
        host = re.search(r"'host': '([^']+)'", shown)
        port = re.search(r"'port': (\d+)", shown)
        if not host or not port:
            raise LabError(f"place {place} has no network serial port acquired (is it acquired?)")
        return f"rfc2217://{host[1]}:{port[1]}?ign_set_control"

