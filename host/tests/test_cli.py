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
    for words in ("serial", "ICCID", "key ID", "subject", "signature verified", "Bench down"):
        assert words in res.stdout
