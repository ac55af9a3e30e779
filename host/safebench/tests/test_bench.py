"""Bringing the simulated bench up and down, also when something fails, leaves nothing running."""

import json

import pytest

from safebench.errors import BenchError
from safebench.simulated_bench import SimulatedBench


@pytest.mark.timeout(60)
def test_up_status_down(tmp_path, no_leftovers):
    bench = SimulatedBench(tmp_path, attached=True)
    state = bench.up(heap="64K")
    try:
        board = state["boards"][0]
        assert state["up"] and board["alive"]
        assert board["heap"] == "64K"
        assert (tmp_path / "sim0" / "tty").resolve().as_posix() == board["device"]
        with pytest.raises(BenchError, match="already up"):
            bench.up()
    finally:
        assert bench.down() == ["sim0"]
    assert bench.status() == {"up": False, "boards": []}


@pytest.mark.timeout(60)
def test_failed_start_cleans_up(tmp_path, no_leftovers):
    bench = SimulatedBench(tmp_path, attached=True)
    with pytest.raises(BenchError, match="did not start"):
        bench.up(heap="lots")  # the board refuses it after the modem started: the modem must be stopped
    assert bench.status()["boards"] == []


@pytest.mark.timeout(60)
def test_dead_part_shows_in_status(tmp_path, no_leftovers):
    import os
    import signal
    bench = SimulatedBench(tmp_path, attached=True)
    state = bench.up()
    try:
        os.kill(state["boards"][0]["pids"]["modem"], signal.SIGKILL)
        import time
        for _ in range(100):
            if not bench.status()["up"]:
                break
            time.sleep(0.02)
        assert not bench.status()["up"]
        with pytest.raises(BenchError, match="not running"):
            bench.board()
    finally:
        bench.down()


@pytest.mark.timeout(120)
def test_cli_bench_json(run_cli, no_leftovers):
    up = run_cli("bench", "up", "--json", "-v")  # -v: its stages on stderr, stdout only the result
    try:
        assert up.returncode == 0, up.stderr
        port = json.loads(up.stdout)["boards"][0]["port"]
        stages = [line.split(":")[1].split()[:2] for line in up.stderr.splitlines() if line.startswith("sim0: ")]
        assert stages == [["making", "a"], ["starting", "the"], ["starting", "the"]], up.stderr
        assert "simulated modem (generic)" in up.stderr and "the board (MicroPython unix port, heap 256K)" in up.stderr
        status = json.loads(run_cli("--json", "bench", "status").stdout)
        assert status["up"] and status["boards"][0]["port"] == port
    finally:
        down = run_cli("bench", "down")
    assert "stopped: sim0" in down.stdout


@pytest.mark.timeout(90)
def test_several_boards_in_one_state_folder(run_cli, no_leftovers):
    """`bench up --boards N`: N boards, each with its own port, simulated modem, SIM and fault control."""
    from safebench_simulator.faults import FaultControl

    up = run_cli("bench", "up", "--boards", "2", "--json")
    try:
        assert up.returncode == 0, up.stderr
        boards = json.loads(up.stdout)["boards"]
        assert [b["name"] for b in boards] == ["sim0", "sim1"]
        assert len({b["port"] for b in boards}) == len({b["card"] for b in boards}) == 2
        for b in boards:
            with FaultControl(b["modem_control"]) as fault:  # each board's modem answers its own control
                assert fault.status()["dialect"] == "generic"
        status = run_cli("bench", "status")
        assert all(f"{b['name']}: running, serial port {b['port']}" in status.stdout for b in boards)
        assert all(f"fault control {b['modem_control']}" in status.stdout for b in boards)
        _one_line(run_cli("bench", "up", "--boards", "9"), 2, "1..8")
    finally:
        down = run_cli("bench", "down")
    assert "stopped: sim0, sim1" in down.stdout, down.stdout
    _one_line(run_cli("bench", "up", "--boards", "2", "--card", "x.json"), 1, "its own simulated modem and SIM")


@pytest.mark.timeout(60)
def test_board_wired_to_an_existing_modem(tmp_path, no_leftovers):
    """`bench up --modem PORT`: the board uses a modem it did not start (here one started by hand)."""
    import subprocess
    import sys

    from safebench.provision import new_sim_card

    new_sim_card(tmp_path / "card.json", tmp_path / "ca")
    modem = subprocess.Popen([sys.executable, "-m", "safebench_simulator.modem", "--card", str(tmp_path / "card.json")],
                             stdout=subprocess.PIPE)
    try:
        port = json.loads(modem.stdout.readline())["port"]
        bench = SimulatedBench(tmp_path / "state", attached=True)
        state = bench.up(modem=port)
        try:
            board = state["boards"][0]
            assert board["modem"] == port and set(board["pids"]) == {"board"}
        finally:
            bench.down()
    finally:
        modem.terminate()
        modem.wait(10)


@pytest.mark.timeout(60)
def test_attached_bench_dies_with_its_owner(tmp_path, no_leftovers):
    """A test session killed outright (SIGKILL, no teardown) leaves no simulated hardware behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    owner = subprocess.Popen([sys.executable, "-c", (
        "import json, sys, time; from safebench.simulated_bench import SimulatedBench; "
        f"s = SimulatedBench({str(tmp_path)!r}, attached=True).up(); "
        "print(json.dumps(s['boards'][0]['pids']), flush=True); time.sleep(60)")], stdout=subprocess.PIPE)
    pids = json.loads(owner.stdout.readline())
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids.values()):
        time.sleep(0.05)
    assert not any(os.path.exists(f"/proc/{p}") for p in pids.values())


def _one_line(res, status, *words):
    """A rejection: exit `status`, one line on stderr with all of `words`, no traceback."""
    assert res.returncode == status and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1 and all(w in res.stderr for w in words), res.stderr


def _running(pid):
    """Alive and not a zombie (a part whose starter has exited is reaped by whoever adopted it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_up_refuses_a_card_that_is_not_there(run_cli, tmp_path, no_leftovers):
    try:
        _one_line(run_cli("bench", "up", "--card", "lost.json"), 1, "no card image at lost.json",
                  "safebench card new --out lost.json")
    finally:
        run_cli("bench", "down")
    assert not (tmp_path / "lost.json").exists() and not (tmp_path / "state").exists()


def test_up_with_a_damaged_ca_starts_nothing(run_cli, tmp_path, no_leftovers):
    ca = tmp_path / "state" / "ca"
    ca.mkdir(parents=True)
    (ca / "ca.pem").write_text("junk\n")
    try:
        _one_line(run_cli("bench", "up"), 1, f"{ca / 'ca.pem'} is not a PEM certificate", f"the CA in {ca} is damaged")
    finally:
        run_cli("bench", "down")
    assert not (tmp_path / "state" / "bench.json").exists()


@pytest.mark.timeout(120)
def test_down_stops_a_bench_whose_state_file_is_damaged(run_cli, tmp_path, no_leftovers):
    """A damaged bench.json: status says what to do, and down still stops every process of the bench."""
    import os
    import signal

    state = tmp_path / "state"
    up = run_cli("bench", "up")
    pids = [pid for b in json.loads((state / "bench.json").read_text())["boards"] for pid in b["pids"].values()]
    try:
        assert up.returncode == 0, up.stderr
        (state / "bench.json").write_text('{"boards": [{"name": "sim0", "pi')
        _one_line(run_cli("bench", "status"), 1, f"state file {state / 'bench.json'} is damaged",
                  "run `safebench bench down`")
        _one_line(run_cli("info"), 1, "is damaged", "run `safebench bench down`")
        down = run_cli("bench", "down")
        assert down.returncode == 0 and down.stderr == "", down.stderr
        assert down.stdout.startswith("stopped: sim0 (") and "damaged" in down.stdout and down.stdout.count("\n") == 1
        assert not any(_running(pid) for pid in pids)
        assert not (state / "bench.json").exists()
    finally:
        for pid in pids:  # without the fix nothing stops them: do it here (their VMs die with them)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_down_stops_only_processes_of_the_bench(tmp_path):
    """A recorded pid that another process has now (the bench died, the pid was handed out again) is
    left alone."""
    import subprocess

    other = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "bench.json").write_text(json.dumps({"boards": [{"name": "sim0", "pids": {"modem": other.pid}}]}))
        bench = SimulatedBench(tmp_path)
        assert bench.status()["boards"][0]["alive"] is False
        assert bench.down() == ["sim0"]
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_a_state_folder_that_is_a_file(run_cli, tmp_path):
    (tmp_path / "afile").write_text("")
    _one_line(run_cli("bench", "status", "--state", "afile"), 1, f"the state folder {tmp_path / 'afile'} is a file")
