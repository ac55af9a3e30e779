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
    up = run_cli("bench", "up", "--json")
    try:
        assert up.returncode == 0, up.stderr
        port = json.loads(up.stdout)["boards"][0]["port"]
        status = json.loads(run_cli("--json", "bench", "status").stdout)
        assert status["up"] and status["boards"][0]["port"] == port
    finally:
        down = run_cli("bench", "down")
    assert "stopped: sim0" in down.stdout


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
