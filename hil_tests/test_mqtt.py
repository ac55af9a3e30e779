"""Signed readings published by the board to a real Mosquitto broker, over MQTT 5 inside TLS 1.3 with the
SIM's keys, and read back by a subscriber that checks them on the host (pycose, cryptography).

The broker requires a client certificate (the device CA's for devices, a services CA's for the ingest),
names each client by its certificate's commonName, and lets a device publish only under its own name.
"""

import re
import time

import pytest
from cryptography.hazmat.primitives import serialization

from safebench import FIRMWARE_DIR, tls
from safebench.broker import TOPIC, Broker, Subscriber, executable
from safebench.device import Device
from safebench.errors import RpcError
from safebench.pki import CertificateAuthority, load_ca_cert
from safebench.provision import register_device
from safebench.readings import check
from safebench.registry import Registry
from safebench.rpc_codes import E_CONNECTION_RESET, E_MQTT, E_NETWORK, E_NOT_CONNECTED, E_TLS, INVALID_PARAMS
from safebench.testing.broker_pki import broker_pki

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(not executable(), reason="mosquitto is not installed (Debian mosquitto; "
                                                          "`make test` installs it)")]
NOT_AUTHORIZED = 0x87
# Two tests cost an emulated Pico minutes (64 readings; a second board with its faults): `make test` runs them
# on the simulated boards, with the same firmware; the outbox's flash on a Pico is shown by the reset test.
ON_EMULATED_TOO_SLOW = ("takes 1.5-2 minutes of an emulated Pico, more than the suite's 20-minute budget allows "
                        "per image: it runs on the simulated boards, with the same firmware")
OUTBOX_LIMIT = int(re.search(r"LIMIT = const\((\d+)\)", (FIRMWARE_DIR / "mqtt" / "outbox.py").read_text())[1])


def _pem(path, obj):
    path.write_bytes(obj.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory, ca_cert):
    return broker_pki(tmp_path_factory.mktemp("mqtt"), ca_cert)


@pytest.fixture(scope="module")
def broker(pki):
    with Broker(pki.files) as b:
        yield b


def _subscriber(broker, pki):
    return Subscriber(broker.address, pki.broker_ca, pki.ingest_cert, pki.ingest_key)


def _connect(device, broker, pki, **params):
    params = {"ca": pki.anchor, "server_name": "localhost", **params}
    return device.call("mqtt.connect", host="127.0.0.1", port=broker.port, timeout=240, **params)


@pytest.fixture(scope="module")
def opened(board):
    """What mqtt.connect answered for the session the publishing tests share; closed after the module."""
    opened = {}
    yield opened
    if opened:
        with Device(board["port"]) as dev:
            dev.connect()
            dev.call("mqtt.close")


@pytest.fixture
def session(device, broker, pki, opened):
    """The board's MQTT session, kept between the tests that only publish through it (a handshake takes
    long on an emulated Pico), and opened again when a test before closed it."""
    try:
        device.call("mqtt.ping")
    except RpcError:
        opened.clear()
    if not opened:
        opened.update(_connect(device, broker, pki))
    return dict(opened)


@pytest.fixture
def registry(tmp_path, device, ca_cert):
    reg = Registry.of_state(tmp_path)
    register_device(device, ca_cert, reg)
    return reg


@pytest.fixture
def own_session(device, broker, pki):
    """mqtt.connect with these params, for a test of its own; closed after it."""
    yield lambda **params: _connect(device, broker, pki, **params)
    device.call("mqtt.close")


def test_readings_reach_the_broker_and_verify(device, session, broker, pki, registry, ca_cert):
    iccid = device.call("sim.info")["iccid"]
    assert session["topic"] == TOPIC.format(device=iccid) and session["client_id"] == iccid
    assert session["version"] == "TLSv1.3" and session["keepalive"] == 60
    with _subscriber(broker, pki) as sub:
        sent = [device.call("mqtt.publish") for _ in range(3)]
        got = sub.wait(3)
    assert [r["topic"] for r in sent] == [session["topic"]] * 3
    assert all(r["published"] and r["sent"] == 1 and r["queued"] == 0 and r["reconnects"] == 0 for r in sent)
    assert [t for t, _ in got] == [session["topic"]] * 3
    assert [p.hex().upper() for _, p in got] == [r["cose"] for r in sent]  # in order, each once
    accepted = registry.accepted()
    verdicts = [check(p, registry, ca_cert, accepted) for _, p in got]
    assert all(v.ok for v in verdicts), [v.reason for v in verdicts]
    assert [v.seq for v in verdicts] == [r["seq"] for r in sent] and sent[0]["seq"] < sent[1]["seq"] < sent[2]["seq"]


def test_a_device_cannot_publish_under_another_name(device, session, broker, pki):
    with _subscriber(broker, pki) as sub:
        with pytest.raises(RpcError) as e:
            device.call("mqtt.publish", topic=TOPIC.format(device="89000000000000000000"))
        assert e.value.code == E_MQTT and e.value.data["reason"] == NOT_AUTHORIZED, str(e.value)
        assert "not authorized" in str(e.value) and "taken off the outbox" in str(e.value)
        own = device.call("mqtt.publish")  # the session goes on
        got = sub.wait(1)
    assert got == [(session["topic"], bytes.fromhex(own["cose"]))]


def test_ping_keeps_the_session(device, session, broker, pki):
    assert device.call("mqtt.ping")["rtt_ms"] >= 0
    with _subscriber(broker, pki) as sub:
        assert device.call("mqtt.publish")["reconnects"] == 0
        sub.wait(1)


def test_a_reading_no_one_subscribed_to_stays_on_the_board(device, session, broker, pki):
    """The broker takes a publish no one subscribed to (PUBACK 0x10) and drops it: the board keeps the
    reading, and sends it first once someone reads the topic (the ingest is back, or has subscribed again
    after a broker restart)."""
    first = device.call("mqtt.publish")
    assert not first["published"] and first["queued"] == 1 and "PUBACK 0x10" in first["error"], first
    with _subscriber(broker, pki) as sub:
        second = device.call("mqtt.publish")
        got = sub.wait(2)
    assert second["published"] and second["sent"] == 2 and second["queued"] == 0, second
    assert [p.hex().upper() for _, p in got] == [first["cose"], second["cose"]]


def test_close_ends_the_session(own_session, device):
    own_session()
    assert device.call("mqtt.close") == {"closed": True, "connects": 1, "queued": 0}
    assert device.call("mqtt.close") == {"closed": False}
    with pytest.raises(RpcError) as e:
        device.call("mqtt.publish")
    assert e.value.code == E_NOT_CONNECTED and "mqtt.connect first" in str(e.value)


def test_the_broker_must_chain_to_the_given_ca(own_session, device, pki):
    other = CertificateAuthority.create("not the broker's CA").cert.public_bytes(serialization.Encoding.DER).hex()
    with pytest.raises(RpcError) as e:
        own_session(ca=other)
    assert e.value.code == E_TLS and "unknown CA" in str(e.value), str(e.value)
    with pytest.raises(RpcError) as e:
        device.call("mqtt.publish")
    assert e.value.code == E_NOT_CONNECTED


def test_the_broker_refuses_a_device_of_another_ca(device, pki, tmp_path):
    services_only = tls.ServerFiles(pki.files.cert, pki.files.key, _pem(tmp_path / "ca.pem", pki.services_ca.cert))
    with Broker(services_only) as strict:
        with pytest.raises(RpcError) as e:
            _connect(device, strict, pki)
        log = strict.log()
    assert "once it had the SIM's certificate" in str(e.value), str(e.value)
    # an alert, or the connection's end that overtook it (a reset, or a modem that will not send any more)
    assert e.value.code in (E_TLS, E_CONNECTION_RESET, E_NETWORK), str(e.value)
    assert "certificate verify failed" in log, log


def test_params_are_checked(device):
    for params, words in (({"host": "", "port": 8883}, "host"), ({"host": "127.0.0.1", "port": 0}, "port"),
                          ({"host": "127.0.0.1", "port": 8883, "keepalive": 0}, "keepalive")):
        with pytest.raises(RpcError) as e:
            device.call("mqtt.connect", **params)
        assert e.value.code == INVALID_PARAMS and words in str(e.value)


def test_a_restarted_broker_is_reconnected(board, own_session, device, broker, pki):
    if board.get("emulated"):
        pytest.skip("a handshake costs an emulated Pico a minute: a publish's reconnect is shown there by "
                    "test_readings_wait_in_the_outbox_while_the_broker_is_gone, this one runs on the simulated boards")
    own_session()
    with _subscriber(broker, pki) as sub:
        device.call("mqtt.publish")
        sub.wait(1)
    broker.stop()
    broker.start()  # the same port
    with _subscriber(broker, pki) as sub:
        res = device.call("mqtt.publish", timeout=240)
        got = sub.wait(1)
    assert res["published"] and res["reconnects"] == 1 and got == [(res["topic"], bytes.fromhex(res["cose"]))]


def test_readings_wait_in_the_outbox_while_the_broker_is_gone(own_session, device, broker, pki, registry, ca_cert):
    own_session()
    broker.stop()
    try:
        first = device.call("mqtt.publish")
        assert not first["published"] and first["queued"] == 1 and "connection refused" in first["error"], first
        second = device.call("mqtt.publish")  # within the backoff: no reconnect is tried
        assert not second["published"] and second["queued"] == 2 and "next reconnect in" in second["error"]
    finally:
        broker.start()
    time.sleep(1.2)  # the backoff after one failed reconnect: 1 s
    with _subscriber(broker, pki) as sub:
        third = device.call("mqtt.publish", timeout=240)  # a reconnect: a handshake takes long on an emulated Pico
        got = sub.wait(3)
    assert third["published"] and third["sent"] == 3 and third["queued"] == 0 and third["reconnects"] == 1
    assert [bytes.fromhex(r["cose"]) for r in (first, second, third)] == [p for _, p in got]  # in order, once each
    accepted = registry.accepted()
    assert all(check(p, registry, ca_cert, accepted).ok for _, p in got)


def test_the_outbox_survives_a_board_reset(own_session, device, broker, pki):
    own_session()
    broker.stop()
    try:
        taken = [device.call("mqtt.publish") for _ in range(2)]
        assert [r["queued"] for r in taken] == [1, 2]
        device.reboot()  # the session is gone with the RAM; the outbox is in flash
    finally:
        broker.start()
    with _subscriber(broker, pki) as sub:
        opened = own_session()
        got = sub.wait(2)
    assert opened["sent"] == 2 and opened["queued"] == 0
    assert [p for _, p in got] == [bytes.fromhex(r["cose"]) for r in taken]


def test_a_full_outbox_drops_the_oldest_and_the_next_reading_says_so(board, own_session, device, broker, pki,
                                                                    registry, ca_cert):
    if board.get("emulated"):
        pytest.skip(ON_EMULATED_TOO_SLOW)
    own_session()
    broker.stop()
    try:
        taken = [device.call("mqtt.publish") for _ in range(OUTBOX_LIMIT + 2)]
        assert taken[-1]["queued"] == OUTBOX_LIMIT and all(not r["published"] for r in taken)
    finally:
        broker.start()
    with _subscriber(broker, pki) as sub:
        assert own_session()["sent"] == OUTBOX_LIMIT
        after = device.call("mqtt.publish")
        got = sub.wait(OUTBOX_LIMIT + 1)
    assert [p for _, p in got] == [bytes.fromhex(r["cose"]) for r in taken[2:] + [after]]  # the two oldest went
    accepted = registry.accepted()
    verdicts = [check(p, registry, ca_cert, accepted) for _, p in got]
    # each drop is told by the next reading taken: the last one queued and the one after
    assert all(v.ok for v in verdicts) and [v.dropped for v in verdicts] == [0] * (OUTBOX_LIMIT - 1) + [1, 1]
    assert [r["dropped"] for r in (taken[-1], after)] == [1, 1]


def test_a_fault_schedule_loses_no_reading_and_counts_none_twice(board, own_board, pki, tmp_path):
    """Readings taken through broker restarts, network drops, a modem reboot, the SIM pulled, and board
    resets (one in the middle of a publish), counted where they end: the ingest's database. Every reading
    the board answered for is stored verified, once and in order; what arrives twice (a QoS 1 resend) is
    stored as a replay, never counted again. The ingest's session outlives the broker's restart."""
    from safebench.database import open_database
    from safebench.ingest import Ingest
    from safebench.readings import REPLAYED, VERIFIED
    from safebench_simulator.faults import FaultControl

    if board.get("emulated"):
        pytest.skip(ON_EMULATED_TOO_SLOW)
    bench, own, device = own_board(dialect="simcom")  # the modem's own TCP sockets: network faults reach them
    device_ca = bench.dir / "ca" / "ca.pem"
    files = tls.make_server_files(tmp_path / "broker", pki.broker_ca_key,
                                  device_ca.read_bytes() + pki.services_ca.cert.public_bytes(serialization.Encoding.PEM))
    registry = Registry.of_state(tmp_path / "ingest")
    devices_ca = load_ca_cert(device_ca)
    register_device(device, devices_ca, registry)
    taken = []
    with Broker(files) as broker, FaultControl(own["modem_control"]) as fault, \
            Ingest(broker.address, pki.broker_ca, pki.ingest_cert, pki.ingest_key, registry, devices_ca,
                   client_id="ingest-fault-schedule", leave=True) as ingest:
        def publish(n=1):
            for _ in range(n):
                try:
                    taken.append(device.call("mqtt.publish", timeout=240))
                except RpcError:
                    pass  # no reading was taken (the SIM is out): nothing to lose

        _connect(device, broker, pki)
        publish(3)
        broker.stop()  # the broker restarts; readings wait on the board
        publish(2)
        broker.start()
        time.sleep(1.2)  # the board's backoff after one failed reconnect
        publish(2)
        fault.network_drop()  # the network loses the connection
        publish(2)
        fault.reboot(boot_ms=500)  # the modem restarts under the session
        publish(3)
        fault.sim_remove()  # no SIM: no reading can be signed, and no session opened
        publish(2)
        fault.sim_insert()
        publish(2)
        device.reboot()  # a board reset between readings: the session is gone, the outbox is not
        _connect(device, broker, pki)
        publish(2)
        device.send_line(b'{"jsonrpc": "2.0", "id": 999, "method": "mqtt.publish"}')
        time.sleep(0.05)
        device.reboot()  # a reset in the middle of a publish: its reading may be whole, or never queued
        _connect(device, broker, pki)
        publish(2)
        deadline = time.monotonic() + 60
        while taken[-1]["queued"] and time.monotonic() < deadline:
            time.sleep(1)
            publish()
        answered = [(r["kid"].lower(), r["seq"]) for r in taken]
        with open_database(registry.db.url) as db:
            def stored():
                return [((r["kid"], r["seq"]), r["verdict"]) for r in db.readings()]

            deadline = time.monotonic() + 30
            while not set(answered) <= {k for k, v in stored() if v == VERIFIED} and time.monotonic() < deadline:
                time.sleep(0.2)
            rows = stored()
        assert ingest.error is None
    verified = [k for k, v in rows if v == VERIFIED]
    lost = [k for k in answered if k not in verified]
    assert not lost and len(answered) >= 15, (lost, [(r["seq"], r["published"], r["queued"]) for r in taken], rows)
    assert len(verified) == len(set(verified)) and verified == sorted(verified), rows  # none twice, in order
    assert all(v == REPLAYED for k, v in rows if v != VERIFIED), rows  # a resend is stored, as a replay
    extra = [k for k in verified if k not in answered]  # the reading of the publish the reset cut short, if any
    assert len(extra) <= 1 and len(verified) == len(answered) + len(extra)
