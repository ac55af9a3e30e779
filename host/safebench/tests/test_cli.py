"""Failures are one clear line and a non-zero exit; the demo runs end to end and cleans up."""

import pytest


def test_no_bench_is_a_clear_error(run_cli):
    res = run_cli("sign")
    assert res.returncode == 1
    assert res.stderr.strip().count("\n") == 0
    assert "no simulated board" in res.stderr and "bench up" in res.stderr


def test_port_without_board_type(run_cli):
    res = run_cli("info", "--port", "/dev/null")
    assert res.returncode == 1 and "--board-type" in res.stderr


def test_missing_port(run_cli):
    res = run_cli("info", "--port", "/dev/does-not-exist", "--board-type", "unix_sim")
    assert res.returncode == 1 and "cannot open /dev/does-not-exist" in res.stderr


@pytest.mark.timeout(180)
def test_demo(run_cli, no_leftovers):
    res = run_cli("demo")
    assert res.returncode == 0, res.stdout + res.stderr
    for words in ("serial", "ICCID", "key ID", "subject", "signature verified", "seq   5", "verified",
                  "tampered copy of the last one: rejected: bad signature", "replayed sequence number 5", "Bench down"):
        assert words in res.stdout


@pytest.mark.timeout(120)
def test_ctrl_c_during_demo_leaves_nothing(tmp_path, no_leftovers, safebench_executable):
    import os
    import signal
    import subprocess

    # A terminal's Ctrl-C finds SIGINT at its default; a runner started in the background may ignore it,
    # and a child would inherit that.
    demo = subprocess.Popen([safebench_executable, "demo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                            env=dict(os.environ, SAFEBENCH_STATE=str(tmp_path / "state")),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in demo.stdout:
        if b"Deploying" in line:  # the bench is up: interrupt in the middle of the work
            break
    demo.send_signal(signal.SIGINT)
    out, err = demo.communicate(timeout=60)
    assert demo.returncode == 130, err
    assert b"interrupted" in err
    assert not (tmp_path / "state" / "bench.json").exists()


@pytest.mark.timeout(180)
def test_demo_on_a_board_it_did_not_start(run_cli, tmp_path, no_leftovers):
    """`demo --port P --board-type T --ca C`: the same demonstration on a given board (here a simulated one)."""
    from safebench.simulated_bench import SimulatedBench

    bench = SimulatedBench(tmp_path / "lab", attached=True)
    board = bench.up()["boards"][0]
    try:
        res = run_cli("demo", "--port", board["port"], "--board-type", "unix_sim",
                      "--ca", str(bench.dir / "ca" / "ca.pem"))
    finally:
        bench.down()
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Real board unix_sim" in res.stdout and "signature verified" in res.stdout
    assert "Bringing up" not in res.stdout and "seq   5" in res.stdout


def test_both_spellings(run_cli):
    """`sim modem` is the old spelling of `simulate modem`; `--bench FILE` of `--bench-file FILE`."""
    for group in ("simulate", "sim"):
        res = run_cli(group, "modem", "--card", "none.json")
        assert res.returncode == 1 and "safebench card new --out none.json" in res.stderr
    for option in ("--bench-file", "--bench"):
        res = run_cli("info", "--board", "lab1", option, "lab.yaml")
        assert res.returncode == 1 and "no bench file at" in res.stderr and "lab.yaml" in res.stderr
