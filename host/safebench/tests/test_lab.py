"""A lab host's boards on a real labgrid (docs/lab.md): `safebench lab export` writes the exporter configuration of
two simulated boards, a labgrid coordinator and exporter run on loopback (the exporter serving each pty with
ser2net), each board becomes a place with its tags, and a place acquired by one user is locked against another
while its board answers the firmware's protocol over RFC 2217, as a remote board does."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from xml.etree import ElementTree

import pytest

from safebench import deploy, lab
from safebench.device import Device
from safebench.errors import LabError
from safebench.simulated_bench import SimulatedBench
from safebench.tls import free_port

SER2NET = shutil.which("ser2net") or shutil.which("/usr/sbin/ser2net")
pytestmark = [pytest.mark.timeout(240),
              pytest.mark.filterwarnings("ignore:set(Daemon|Name)\\(\\) is deprecated:DeprecationWarning"),  # pyserial
              pytest.mark.skipif(not (lab.LAB_BIN / "labgrid-client").exists() or not SER2NET,
                                 reason="needs labgrid (make lab-venv) and ser2net (Debian ser2net; make peers)")]


def _start(tmp_path, *cmd):
    """A labgrid program in its own process group (the exporter's ser2net goes with it), logging to a file."""
    log = open(tmp_path / f"{os.path.basename(cmd[0])}.log", "w")
    env = dict(os.environ, PATH=f"{os.environ.get('PATH', '')}:/usr/sbin")
    return subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _listening(port, deadline_s=30):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture
def lab_host(tmp_path, run_cli):
    """(coordinator address, places {name: {"match", "tags"}}): two simulated boards, deployed, exported by a
    labgrid exporter named lab1 to a coordinator; everything stopped after."""
    state = tmp_path / "state"
    bench = SimulatedBench(state, attached=True)
    started = []
    try:
        for b in bench.up(boards=2)["boards"]:
            deploy.deploy(b["port"], b["type"], tmp_path / f"build-{b['name']}")
        exported = run_cli("lab", "export", "--out", str(tmp_path / "exporter.yaml"), "--json")
        assert exported.returncode == 0, exported.stderr
        port = free_port()
        address = f"127.0.0.1:{port}"
        started.append(_start(tmp_path, lab.program("labgrid-coordinator"), "-l", address))
        _listening(port)
        started.append(_start(tmp_path, lab.program("labgrid-exporter"), "-c", address, "--hostname", "127.0.0.1",
                              "-n", "lab1", str(tmp_path / "exporter.yaml")))
        client = lab.Client(address)
        deadline = time.monotonic() + 60
        while client.run("resources").count("NetworkSerialPort") < 2:
            assert time.monotonic() < deadline, "the exporter did not publish both boards"
            time.sleep(0.5)
        yield address, json.loads(exported.stdout)["places"]
    finally:
        for proc in reversed(started):
            _stop(proc)
        bench.down()


def test_a_place_is_one_users_at_a_time_and_its_board_answers_over_the_network(lab_host):
    address, places = lab_host
    alice, bob = lab.Client(address, user="alice"), lab.Client(address, user="bob")
    for name, place in places.items():
        alice.add_place(name, "lab1" + place["match"][1:], place["tags"])
    assert "type=unix_sim" in alice.run("show", place="sim0")  # the tags a nightly run picks boards by

    alice.acquire("sim0")
    with Device(alice.serial_url("sim0")) as dev:  # rfc2217://127.0.0.1:<ser2net's port>
        info = dev.connect()
        reading = dev.call("reading")
    assert info["board"] == "unix-sim" and reading["seq"] >= 1 and reading["board"] == info["board_id"]
    with pytest.raises(LabError, match="acquired"):
        bob.acquire("sim0")  # locked: a second run waits for it or takes another
    bob.acquire("sim1")
    alice.release("sim0")
    bob.acquire("sim0")
    with Device(bob.serial_url("sim0")) as dev:
        assert dev.connect()["board_id"] == info["board_id"]
    bob.release("sim0")
    bob.release("sim1")


def test_the_hil_suite_runs_on_a_place_it_reserves_by_tag_and_gives_back(lab_host, tmp_path):
    """`pytest hil_tests -n 2 --lg-coordinator ... --lg-tags type=unix_sim`: each worker reserves a place with the
    tags and acquires it, deploys and tests its board over RFC 2217, JUnit names each test's place, and the
    places are free again after the run (also after one that ends in an error: the second names a test that is not there)."""
    address, places = lab_host
    owner = lab.Client(address, user="owner")
    for name, place in places.items():
        owner.add_place(name, "lab1" + place["match"][1:], place["tags"])
    ca = tmp_path / "state" / "ca" / "ca.pem"  # the lab host's bench CA: the one its SIMs' certificates name
    for run, selection, status in (("pass", ["hil_tests/test_sign.py", "-n", "2"], 0),
                                   ("fail", ["hil_tests/test_sign.py::test_no_such_test"], 4)):
        junit = tmp_path / f"{run}.xml"
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection,
                               "--lg-coordinator", address, "--lg-tags", "type=unix_sim", "--ca", str(ca),
                               f"--junitxml={junit}", "--basetemp", str(tmp_path / f"base-{run}")],
                              cwd=lab.LAB_BIN.parents[1], capture_output=True, text=True, timeout=200)
        assert done.returncode == status, done.stdout[-2000:] + done.stderr[-2000:]
        if status == 0:
            cases = ElementTree.parse(junit).getroot().iter("testcase")
            placed = {p.get("value") for c in cases for p in c.iter("property") if p.get("name") == "lab_place"}
            assert placed == set(places), placed  # two workers, each on a place of its own
        who = owner.run("who")
        assert "sim0" not in who and "sim1" not in who, who  # given back: nobody holds a place


@pytest.mark.parametrize("options, said", [
    (["--lg-place", "sim0"], "give --lg-coordinator"),
    (["--lg-coordinator", "127.0.0.1:1"], "give the place, --lg-place NAME or --lg-tags"),
    (["--lg-coordinator", "127.0.0.1:1", "--lg-tags", "type"], "give KEY=VALUE"),
    (["--lg-coordinator", "127.0.0.1:1", "--lg-place", "sim0", "--port", "/dev/null"], "both say which board"),
])
def test_lab_options_that_cannot_work_are_one_line_before_any_test(options, said, tmp_path):
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "hil_tests/test_sign.py",
                           *options], cwd=lab.LAB_BIN.parents[1], capture_output=True, text=True, timeout=60)
    assert done.returncode == 4 and said in done.stderr and "Traceback" not in done.stderr, done.stderr
