"""`safebench enroll` and `safebench identity` on a simulated board with a factory SIM: no options, so the bench's
own EST server is started for the enrolment with the fleet CA's key made in a SoftHSM2 token; the board's new
identity is bound, registered, and its readings verify (`safebench read`, the bench CA and the fleet CA as the
devices' CAs). Bad options are one line."""

import json

import pytest

from safebench import deploy, hsm
from safebench.simulated_bench import SimulatedBench

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(hsm.softhsm_module() is None, reason="SoftHSM2 is not installed (Debian softhsm2; "
                                                                      "`make test` installs it)")]


@pytest.fixture
def factory_board(run_cli, tmp_path):
    """(port, state): a simulated board whose SIM is a factory card of the state's bench CA, deployed."""
    state = tmp_path / "state"
    made = run_cli("card", "new", "--factory", "--out", str(tmp_path / "factory.json"), "--json")
    assert made.returncode == 0, made.stderr
    bench = SimulatedBench(state, attached=True)
    board = bench.up(card=tmp_path / "factory.json")["boards"][0]
    try:
        deploy.deploy(board["port"], board["type"], tmp_path / "build")
        yield ["--port", board["port"], "--board-type", board["type"]], json.loads(made.stdout)
    finally:
        bench.down()


def test_enroll_with_no_options_uses_the_benchs_server_and_the_identity_signs_after(run_cli, factory_board):
    on, card = factory_board
    before = json.loads(run_cli("identity", "--json", *on).stdout)
    assert before["store"] == "card" and "bench CA" in before["issuer"]  # the bootstrap certificate

    enrolled = run_cli("enroll", *on)
    assert enrolled.returncode == 0, enrolled.stderr
    assert f"SIM {card['iccid']} enrolled" in enrolled.stdout and "fleet CA" in enrolled.stdout
    assert "bound to it (generation" in enrolled.stdout, enrolled.stdout  # the operator bound the new identity
    now = json.loads(run_cli("identity", "--json", *on).stdout)
    assert now["store"] == "flash" and "fleet CA" in now["issuer"] and now["kid"] != before["kid"]
    read = run_cli("read", "--count", "2", "--json", *on)
    assert read.returncode == 0, read.stdout + read.stderr
    verdicts = [json.loads(line) for line in read.stdout.splitlines()][:-1]
    assert [v["verified"] for v in verdicts] == [True, True] and verdicts[0]["kid"] == now["kid"].lower()

    renewed = run_cli("enroll", "--json", *on)
    assert renewed.returncode == 0 and json.loads(renewed.stdout)["operation"] == "simplereenroll", renewed.stderr


@pytest.mark.parametrize("options, words", [
    (["--est", "http://127.0.0.1:8443/.well-known/est/"], ("give https://HOST:PORT/.well-known/est/",)),
    (["--est", "https://127.0.0.1:8443/.well-known/est/"], ("--est needs --ca",)),
])
def test_bad_enrolment_options_are_one_line(run_cli, options, words):
    res = run_cli("enroll", "--port", "/dev/null", "--board-type", "unix_sim", *options)
    assert res.returncode == 1 and "Traceback" not in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert all(w in res.stderr for w in words), res.stderr
