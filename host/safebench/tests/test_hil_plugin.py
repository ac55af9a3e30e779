"""The HIL plugin: tests spread over several simulated boards, each worker on its own."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.timeout(240)
def test_sim_boards_spreads_tests_over_boards(tmp_path, no_leftovers):
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--sim-boards", "2",
                          "hil_tests/test_sign.py", f"--basetemp={tmp_path}", f"--junitxml={tmp_path}/hil.xml"],
                         cwd=REPO, capture_output=True, text=True, timeout=220)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    boards = {p.name for p in tmp_path.glob("popen-gw*/bench*")}
    assert len(boards) == 2  # one bench per worker
    assert "testcase" in (tmp_path / "hil.xml").read_text()  # JUnit XML for CI dashboards


@pytest.mark.timeout(240)
def test_real_board_from_a_bench_file(tmp_path, no_leftovers):
    """`--board ALIAS --bench FILE`: the suite runs on a board it did not start (here a simulated one)
    and skips what only a simulated bench can do (fault injection)."""
    from safebench.simulated_bench import SimulatedBench

    bench = SimulatedBench(tmp_path / "lab", attached=True)
    board = bench.up()["boards"][0]
    try:
        (tmp_path / "bench.yaml").write_text(
            f"boards:\n  lab1:\n    port: {board['port']}\n    type: unix_sim\n"
            f"    sim: {{ca: {bench.dir / 'ca' / 'ca.pem'}}}\n")
        res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--board", "lab1",
                              "--bench-file", str(tmp_path / "bench.yaml"), "hil_tests/test_sign.py",
                              "hil_tests/test_faults.py::test_sim_removed_then_reinserted", f"--basetemp={tmp_path}/t"],
                             cwd=REPO, capture_output=True, text=True, timeout=200)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        assert "5 passed, 1 skipped" in res.stdout and "needs the simulated bench" in res.stdout
        assert not list((tmp_path / "t").glob("bench*"))  # no bench of its own was brought up
    finally:
        bench.down()


def test_plugin_is_an_entry_point_that_other_suites_can_drop(tmp_path):
    """Another project's tests run with the plugin loaded (it touches no test that asks nothing of it),
    and `-p no:safebench` leaves it out altogether."""
    (tmp_path / "test_other.py").write_text("def test_plain():\n    assert True\n")

    def pytest(*args):
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "--rootdir", str(tmp_path), *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)

    loaded = pytest("--help")
    assert "--sim-boards" in loaded.stdout  # found through the pytest11 entry point, no -p or conftest
    assert "--sim-boards" not in pytest("-p", "no:safebench", "--help").stdout
    for args in ((), ("-p", "no:safebench")):
        res = pytest(*args, "test_other.py")
        assert res.returncode == 0 and "1 passed" in res.stdout, res.stdout + res.stderr
