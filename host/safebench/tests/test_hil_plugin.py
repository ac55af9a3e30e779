"""The HIL plugin: its options and the bench file checked before any test, what a JUnit record carries, tests
spread over several simulated boards (each worker on its own), and staying out of other suites."""

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
        assert " passed, 1 skipped in " in res.stdout and "needs the simulated bench" in res.stdout
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


def _hil_pytest(*args, cwd=REPO, timeout=200):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


MISSPELT_TYPE = b"boards:\n  lab1:\n    port: /dev/null\n    type: unix_simm\n"


MISTAKES = [
    ("a board type the bench file misspells", MISSPELT_TYPE, ("--board", "lab1", "--bench-file", "BENCH"),
     "board 'lab1': type must be one of"),
    ("every board of the bench file, -n 2", MISSPELT_TYPE, ("--bench-file", "BENCH", "-n", "2"),
     "board 'lab1': type must be one of"),
    ("a bench file that is not UTF-8", b"boards:\n  lab1: {port: /dev/null, type: unix_sim, notes: \xff}\n",
     ("--bench-file", "BENCH"), "not UTF-8 text (byte 57)"),
    ("a list where a bench file's key belongs", b"boards:\n  ? [lab1]\n  : {port: /dev/null, type: unix_sim}\n",
     ("--bench-file", "BENCH"), "not valid YAML (line 2, column 5): a key is a name, not a list"),
    ("a list where the modem's name belongs", b"boards:\n  lab1: {port: /dev/null, type: unix_sim, modem: [bg96]}\n",
     ("--bench-file", "BENCH"), "board 'lab1': modem must be one of generic, quectel, simcom (got ['bg96'])"),
    ("a heap that is no size", None, ("--heap", "12X"), "--heap: heap must look like 64K or 1M, not '12X'"),
    ("a negative number of boards", None, ("--sim-boards", "-2"), "--sim-boards -2: give a number of simulated boards"),
    ("simulated and emulated boards", None, ("--sim-boards", "1", "--emu-boards", "1"),
     "give --sim-boards N or --emu-boards N, not both"),
    ("an image without emulated boards", None, ("--emu-firmware", "1.22.0"),
     "--emu-firmware is the image of the --emu-boards Picos: give --emu-boards N"),
    ("a heap for an emulated Pico", None, ("--emu-boards", "1", "--heap", "64K"),
     "--heap is for the unix-port board: an emulated Pico has the heap its image gives it"),
    ("an image that is not there", None, ("--emu-boards", "1", "--emu-firmware", "9.9.9"),
     "--emu-boards: no MicroPython image for the emulated Pico at"),
    ("a board type that does not exist", None, ("--port", "/dev/null", "--board-type", "esp33"),
     "--board-type esp33: no such board definition"),
    ("a CA that is not PEM", MISSPELT_TYPE, ("--port", "/dev/null", "--board-type", "unix_sim", "--ca", "BENCH"),
     "not a PEM certificate"),
]


@pytest.mark.parametrize("mistake, bench, args, says", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_mistake_in_the_options_or_bench_file_is_one_error(tmp_path, mistake, bench, args, says):
    """Checked when the session starts: one line and exit status 4 (usage error), not one error per test."""
    path = tmp_path / "bench.yaml"
    path.write_bytes(bench or b"")
    res = _hil_pytest(*(str(path) if a == "BENCH" else a for a in args), "hil_tests", timeout=60)
    out = (res.stdout + res.stderr).strip().splitlines()
    assert res.returncode == 4, out[-20:]
    assert len(out) == 1 and out[0].startswith("ERROR: ") and says in out[0], out[-20:]


def test_a_board_that_cannot_be_deployed_to_is_one_error(tmp_path):
    """The board fixture fails the first test with one line and ends the session."""
    res = _hil_pytest("--port", "/dev/null", "--board-type", "unix_sim", "hil_tests", f"--basetemp={tmp_path}",
                      timeout=60)
    assert res.returncode == 2, res.stdout[-2000:]
    assert "1 error" in res.stdout and "Traceback" not in res.stdout
    assert "cannot deploy the firmware to unix_sim on /dev/null: cannot read the .mpy version" in res.stdout
    assert len(res.stdout.splitlines()) < 12, res.stdout


@pytest.mark.timeout(120)
def test_junit_report_carries_the_board_its_serial_log_and_trace(tmp_path, no_leftovers):
    """With --junitxml each test names its board, and a failing one carries the board's serial log and the
    AT/APDU trace of what it did (the terminal shows them as sections of its report)."""
    import xml.etree.ElementTree as ET

    (tmp_path / "test_tiny.py").write_text(
        "def test_fails(device):\n    device.call('sim.info')\n    assert False, 'on purpose'\n\n"
        "def test_passes(board):\n    pass\n")
    res = _hil_pytest("--rootdir", str(tmp_path), "test_tiny.py", f"--basetemp={tmp_path}/t",
                      f"--junitxml={tmp_path}/hil.xml", cwd=tmp_path, timeout=100)
    assert res.returncode == 1 and "1 failed, 1 passed" in res.stdout, res.stdout[-2000:] + res.stderr[-2000:]
    assert "serial log of sim0" in res.stdout and "AT/APDU trace of sim0" in res.stdout
    cases = {c.get("name"): {p.get("name"): p.get("value") for p in c.iter("property")}
             for c in ET.parse(tmp_path / "hil.xml").getroot().iter("testcase")}
    failed, passed = cases["test_fails"], cases["test_passes"]
    assert failed["board"] == passed["board"] == f"sim0 (unix_sim) on {tmp_path}/t/bench0/sim0/tty"
    assert '"method": "ready"' in failed["serial_log"]  # what the board printed, newlines kept
    assert '"dir": "at>"' in failed["trace"] and "AT+CSIM=" in failed["trace"]  # the sim.info the test made
    assert set(passed) == {"board"}  # a passing test carries no logs
