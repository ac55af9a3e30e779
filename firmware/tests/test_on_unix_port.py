"""pytest side of the firmware unit tests: each test module runs inside the real MicroPython VM."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from safebench.deploy import feature_modules

HERE = Path(__file__).parent
MICROPYTHON = str(Path(sys.executable).with_name("micropython"))
# The folders of the modules every feature manifest names (core, readings, tls): the VM imports by bare name.
FEATURES = sorted({src.parent for src in feature_modules().values()})
MODULES = sorted(p.stem for p in HERE.glob("mpy_test_*.py"))  # pytest leaves these to the VM


@pytest.mark.parametrize("module", MODULES)
def test_firmware_module(module):
    env = dict(os.environ, MICROPYPATH=":".join(str(d) for d in (HERE, *FEATURES)))
    # 128K words: at 64K the unix port's heap happens not to keep a failed import's module alive, which
    # mpy_test_service shows that the firmware lets go (boards do keep it)
    res = subprocess.run([MICROPYTHON, "-X", "heapsize=128wK", str(HERE / "runner.py"), module],
                         capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "PASS" in res.stdout
