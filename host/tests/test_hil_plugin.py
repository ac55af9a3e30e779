"""The HIL plugin: tests spread over several simulated boards, each worker on its own."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(240)
def test_sim_boards_spreads_tests_over_boards(tmp_path, no_leftovers):
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--sim-boards", "2",
                          "hil_tests/test_sign.py", f"--basetemp={tmp_path}", f"--junitxml={tmp_path}/hil.xml"],
                         cwd=REPO, capture_output=True, text=True, timeout=220)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    boards = {p.name for p in tmp_path.glob("popen-gw*/bench*")}
    assert len(boards) == 2  # one bench per worker
    assert "testcase" in (tmp_path / "hil.xml").read_text()  # JUnit XML for CI dashboards
