import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def simulator_processes(under=""):
    """Simulator processes (board supervisors, VMs, modems) whose command line names `under`."""
    out = subprocess.run(["pgrep", "-af", "safebench_simulator|unixboard/sim_boot.py"], capture_output=True, text=True)
    pids = set()
    for line in out.stdout.splitlines():
        pid, _, cmd = line.partition(" ")
        if under in cmd and int(pid) != os.getpid():
            pids.add(int(pid))
    return pids


@pytest.fixture
def no_leftovers(tmp_path):
    """Fails the test if simulator processes it started (their files are under its tmp_path) outlive it."""
    yield
    deadline = time.monotonic() + 5  # a VM whose supervisor just went is killed by the kernel a moment later
    while simulator_processes(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert simulator_processes(str(tmp_path)) == set()


@pytest.fixture(scope="session")
def safebench_executable():
    """The `safebench` CLI installed next to this Python."""
    return str(Path(sys.executable).with_name("safebench"))


@pytest.fixture
def run_cli(tmp_path, safebench_executable):
    """run(*args, state=, env=, timeout=): the CLI in the test's tmp_path, with its own state folder unless given."""
    def run(*args, state=None, env=None, timeout=120):
        env = dict(os.environ, SAFEBENCH_STATE=str(state or tmp_path / "state"), **(env or {}))
        return subprocess.run([safebench_executable, *args], capture_output=True, text=True, timeout=timeout,
                              cwd=tmp_path, env=env)
    return run


@pytest.fixture
def start_cli(tmp_path, safebench_executable):
    """start(*args, state=): the CLI started in the test's tmp_path (a Popen with stdout and stderr piped), with
    SIGINT at its default, as a terminal's Ctrl-C finds it: a runner started in the background may ignore
    SIGINT, and a child would inherit that. Killed at the end of the test if it still runs."""
    started = []

    def start(*args, state=None):
        proc = subprocess.Popen([safebench_executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=tmp_path, env=dict(os.environ, SAFEBENCH_STATE=str(state or tmp_path / "state")),
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def simulated_board(tmp_path_factory):
    """A simulated board with the firmware deployed: {"state": dir, "port": its port, "ca": the bench CA}."""
    from safebench import deploy
    from safebench.simulated_bench import SimulatedBench

    state = tmp_path_factory.mktemp("bench")
    bench = SimulatedBench(state, attached=True)
    board = bench.up()["boards"][0]
    try:
        deploy.deploy(board["port"], board["type"], tmp_path_factory.mktemp("build"))
        yield {"state": state, "port": board["port"], "ca": state / "ca" / "ca.pem"}
    finally:
        bench.down()


@pytest.fixture
def reading_device(tmp_path):
    """A ReadingDevice registered in tmp_path/"state", the state folder `run_cli` uses."""
    from safebench.pki import CertificateAuthority
    from safebench.registry import Registry
    from safebench.testing.signed_readings import ReadingDevice

    state = tmp_path / "state"
    return ReadingDevice(CertificateAuthority.load_or_create(state / "ca"), Registry.of_state(state))
