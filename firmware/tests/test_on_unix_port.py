"""pytest side of the firmware unit tests: each test module runs inside the real MicroPython VM."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
MICROPYTHON = str(Path(sys.executable).with_name("micropython"))
FEATURES = sorted(p.parent for p in HERE.parent.glob("*/manifest.py"))  # core, readings, tls
MODULES = sorted(p.stem for p in HERE.glob("mpy_test_*.py"))  # pytest leaves these to the VM


@pytest.mark.parametrize("module", MODULES)
def test_firmware_module(module):
    env = dict(os.environ, MICROPYPATH=":".join(str(d) for d in (HERE, *FEATURES)))
    res = subprocess.run([MICROPYTHON, "-X", "heapsize=64wK", str(HERE / "runner.py"), module],
                         capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "PASS" in res.stdout
