"""`safebench broker` and `safebench publish`: a simulated board publishes to a real Mosquitto on loopback;
each reading is printed as the broker acknowledges it, Ctrl-C closes the board's session, failures are one line."""

import json
import signal

import pytest

from safebench.broker import executable
from safebench.device import Device
from safebench.tls import free_port

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.skipif(not executable(), reason="mosquitto is not installed (Debian mosquitto; "
                                                          "`make test` installs it)")]


@pytest.fixture
def broker(start_cli, simulated_board):
    """`safebench broker` for the simulated board's bench: (its address, the process)."""
    port = free_port()
    proc = start_cli("broker", "--listen-port", str(port), "--json", state=simulated_board["state"])
    first = json.loads(proc.stdout.readline())
    assert first == {"event": "listening", "broker": f"127.0.0.1:{port}", "topics": "safebench/<ICCID>/readings"}
    yield first["broker"], proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


def _on(board):
    return "--port", board["port"], "--board-type", "unix_sim"


def test_publish_prints_each_reading_the_broker_took(run_cli, simulated_board, broker):
    address, proc = broker
    res = run_cli("publish", "--broker", address, "--count", "2", "--json", *_on(simulated_board),
                  state=simulated_board["state"])
    assert res.returncode == 0, res.stderr
    connected, *published, summary = [json.loads(line) for line in res.stdout.splitlines()]
    topic = connected["topic"]
    assert connected["event"] == "connected" and connected["version"] == "TLSv1.3" and topic.startswith("safebench/")
    assert [r["event"] for r in published] == ["published"] * 2 and published[1]["seq"] == published[0]["seq"] + 1
    assert all(r["topic"] == topic and r["reason"] in (0, 0x10) for r in published)  # 0x10: nobody subscribed
    assert summary == {"broker": address, "topic": topic, "readings": 2, "queued": 0, "reconnects": 0}
    plain = run_cli("publish", "--broker", address, *_on(simulated_board), state=simulated_board["state"])
    assert plain.returncode == 0 and f"publishing to {topic}" in plain.stdout and f"published to {topic}" in plain.stdout
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert json.loads(out.decode().splitlines()[-1]) == {"broker": address, "exit_status": None}


def test_ctrl_c_during_follow_closes_the_boards_session(start_cli, simulated_board, broker):
    address, _ = broker
    follow = start_cli("publish", "--broker", address, "--follow", "--interval", "0.2", "--json",
                       *_on(simulated_board), state=simulated_board["state"])
    lines = [json.loads(follow.stdout.readline()) for _ in range(3)]  # connected, then readings as they go
    follow.send_signal(signal.SIGINT)
    out, err = follow.communicate(timeout=60)
    assert follow.returncode == 0, err
    assert [r["event"] for r in lines] == ["connected", "published", "published"]
    assert json.loads(out.decode().splitlines()[-1])["readings"] >= 2
    with Device(simulated_board["port"]) as dev:
        dev.connect()
        assert dev.call("mqtt.close") == {"closed": False}  # the command closed it on its way out


def test_publish_failures_are_one_line(run_cli, simulated_board, tmp_path):
    gone = run_cli("publish", "--broker", f"127.0.0.1:{free_port()}", *_on(simulated_board),
                   state=simulated_board["state"])
    assert gone.returncode == 1 and gone.stderr.count("\n") == 1 and "connection refused" in gone.stderr, gone.stderr
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate")
    bad_ca = run_cli("publish", "--broker", "127.0.0.1:8883", "--ca", str(not_pem), *_on(simulated_board),
                     state=simulated_board["state"])
    assert bad_ca.returncode == 1 and bad_ca.stderr.count("\n") == 1 and str(not_pem) in bad_ca.stderr, bad_ca.stderr
    usage = run_cli("publish", "--broker", "8883", *_on(simulated_board))
    assert usage.returncode == 2 and "HOST:PORT" in usage.stderr and "Traceback" not in usage.stderr


def test_broker_needs_the_bench_ca(run_cli):
    res = run_cli("broker")
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and "no bench CA" in res.stderr, res.stderr
