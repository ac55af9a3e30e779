"""`safebench broker` and `safebench publish`: a simulated board publishes to a real Mosquitto on loopback;
each reading is printed as the broker acknowledges it, Ctrl-C closes the board's session, failures are one line."""

import json
import signal

import pytest

from safebench.broker import INGEST_USER, Subscriber, executable
from safebench.device import Device
from safebench.pki import CA_CERT, bench_ca, service_identity
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
    assert first == {"event": "listening", "broker": f"127.0.0.1:{port}", "topics": "safebench/<ICCID>/readings",
                     "crl": str(simulated_board["state"] / "crl" / "devices.crl.pem")}
    state = simulated_board["state"]
    cert, key = service_identity(bench_ca(state), state / "ingest", INGEST_USER)
    with Subscriber(first["broker"], state / "ca" / CA_CERT, cert, key):  # a reader: a reading no one reads stays queued
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
    assert all(r["topic"] == topic and r["reason"] == 0 for r in published)
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


@pytest.mark.timeout(120)
def test_ingest_stores_each_reading_with_its_verdict_and_says_so(start_cli, run_cli, reading_device, tmp_path):
    """`safebench ingest` against Mosquitto: one line per reading as it is stored, the replay among them
    rejected and stored too, exit status 1 for it; an unreachable broker is one line."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from safebench.broker import Broker
    from safebench.database import open_database
    from safebench.testing.broker_pki import broker_pki

    epoch = 1_780_000_000
    pki = broker_pki(tmp_path / "pki", reading_device.ca.cert)  # devices of the bench CA, the CLI's default
    identity = ("--ca", str(pki.broker_ca), "--cert", str(pki.ingest_cert), "--key", str(pki.ingest_key))
    with Broker(pki.files) as broker:
        ingest = start_cli("ingest", "--broker", broker.address, *identity, "--count", "3", "--json")
        subscribed = json.loads(ingest.stdout.readline())
        assert subscribed["event"] == "subscribed" and subscribed["topic"] == "$share/ingest/safebench/+/readings"
        cert, key = reading_device.client_files(tmp_path)
        device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=reading_device.ICCID, protocol=mqtt.MQTTv5)
        device.tls_set(ca_certs=str(pki.broker_ca), certfile=str(cert), keyfile=str(key))
        device.connect("127.0.0.1", broker.port)
        device.loop_start()
        try:
            for seq in (1, 2, 2):  # the third is the second again: a replay
                device.publish(reading_device.topic, reading_device.reading(epoch, seq), qos=1).wait_for_publish(10)
        finally:
            device.disconnect()
            device.loop_stop()
        out, err = ingest.communicate(timeout=60)
    assert ingest.returncode == 1, err
    *verdicts, summary = [json.loads(line) for line in out.decode().splitlines()]
    assert [(v["verdict"], v["seq"]) for v in verdicts] == [("verified", 1), ("verified", 2), ("replayed", 2)]
    assert summary["readings"] == 3 and summary["failed"] == 1
    with open_database(subscribed["database"]) as db:
        assert [r["verdict"] for r in db.readings()] == ["verified", "verified", "replayed"]
    gone = run_cli("ingest", "--broker", f"127.0.0.1:{free_port()}", *identity)
    assert gone.returncode == 1 and gone.stderr.count("\n") == 1 and "could not connect" in gone.stderr, gone.stderr


def test_dashboard_serves_the_states_database_until_ctrl_c(start_cli, run_cli, reading_device, tmp_path):
    import urllib.request

    from safebench.readings import Verifier
    from safebench.registry import Registry

    state = tmp_path / "state"
    cose = reading_device.reading(1_780_000_000, 1)
    with Registry.of_state(state) as registry:
        registry.db.store_readings([(reading_device.topic, cose, Verifier(registry, reading_device.ca.cert).check(cose))])
    port = free_port()
    page = start_cli("dashboard", "--port", str(port), "--json")
    serving = json.loads(page.stdout.readline())
    assert serving["event"] == "serving" and serving["url"] == f"http://127.0.0.1:{port}/"
    with urllib.request.urlopen(serving["url"] + "api/state", timeout=10) as res:
        state_now = json.loads(res.read())
    assert [(r["verdict"], r["seq"]) for r in state_now["readings"]] == [("verified", 1)] and not state_now["actions"]
    taken = run_cli("dashboard", "--port", str(port))
    assert taken.returncode == 1 and taken.stderr.count("\n") == 1 and "cannot listen" in taken.stderr, taken.stderr
    page.send_signal(signal.SIGINT)
    out, err = page.communicate(timeout=30)
    assert page.returncode == 0, err
    assert json.loads(out.decode().splitlines()[-1])["url"] == serving["url"]
    bad = run_cli("dashboard", "--demo", "--boards", "9")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--boards" in bad.stderr, bad.stderr


@pytest.mark.timeout(60)
def test_est_serve_enrols_a_bootstrap_identity_of_the_bench_ca(start_cli, reading_device, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from safebench import hsm
    from safebench.est import EstClient

    if hsm.softhsm_module() is None:
        pytest.skip("SoftHSM2 is not installed (Debian softhsm2; `make test` installs it)")
    server = start_cli("est", "serve", "--port", "0", "--json")
    serving = json.loads(server.stdout.readline())
    assert serving["event"] == "serving" and serving["key"].endswith("not extractable"), serving
    cert, key = reading_device.client_files(tmp_path)  # a bootstrap identity of the bench CA
    client = EstClient(serving["url"], serving["ca"], cert, key)
    new_key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, reading_device.ICCID)]))
           .sign(new_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    issued = client.enroll(csr)
    issued.verify_directly_issued_by(x509.load_pem_x509_certificate(open(serving["ca"], "rb").read()))
    server.send_signal(signal.SIGINT)
    out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
