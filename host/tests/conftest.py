import os
import subprocess
import sys
from pathlib import Path

import pytest

SAFEBENCH = str(Path(sys.executable).with_name("safebench"))


def sim_processes():
    out = subprocess.run(["pgrep", "-f", "safebench_sim|unixboard/sim_boot.py"], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()} - {os.getpid()}


@pytest.fixture
def no_leftovers():
    """Fails the test if it leaves simulator processes behind."""
    before = sim_processes()
    yield
    assert sim_processes() - before == set()


@pytest.fixture
def run_cli(tmp_path):
    def run(*args, timeout=120):
        return subprocess.run([SAFEBENCH, *args], capture_output=True, text=True, timeout=timeout,
                              cwd=tmp_path, env=dict(os.environ, SAFEBENCH_STATE=str(tmp_path / "state")))
    return run
