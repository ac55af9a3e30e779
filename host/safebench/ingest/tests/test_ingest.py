"""The ingest against a real Mosquitto and a real database (SQLite, and a PostgreSQL server the tests start):
every reading is stored with its verdict, a reading is verified once however often it comes, and two
workers of one shared subscription split the readings and store each once.

Devices here are MQTT clients with software keys (testing.signed_readings): what the board publishes,
without a board; the HIL suite's test_mqtt publishes from boards.
"""

import datetime
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from safebench.broker import Broker, executable
from safebench.database import open_database
from safebench.errors import BrokerError
from safebench.ingest import Ingest
from safebench.pki import CertificateAuthority
from safebench.readings import BAD_SIGNATURE, REPLAYED, REVOKED, STALE, UNKNOWN_KEY, VERIFIED
from safebench.registry import Registry
from safebench.testing.broker_pki import broker_pki
from safebench.testing.postgres import PostgresServer, bin_dir
from safebench.testing.signed_readings import ReadingDevice

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(not executable(), reason="mosquitto is not installed (Debian mosquitto; "
                                                          "`make test` installs it)")]
EPOCH = 1_780_000_000


@pytest.fixture(scope="module")
def devices_ca():
    return CertificateAuthority.create("safebench devices CA")


@pytest.fixture(scope="module")
def pki(tmp_path_factory, devices_ca):
    return broker_pki(tmp_path_factory.mktemp("pki"), devices_ca.cert)


@pytest.fixture(scope="module")
def broker(pki):
    with Broker(pki.files) as b:
        yield b


@pytest.fixture(scope="module")
def postgres():
    if bin_dir() is None:
        pytest.skip("PostgreSQL is not installed (Debian postgresql; `make test` installs it)")
    with PostgresServer() as pg:
        yield pg


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(request, tmp_path):
    """An empty registry in SQLite, then in PostgreSQL (the same schema through its URL)."""
    if request.param == "sqlite":
        url = tmp_path / "safebench.db"
    else:
        url = request.getfixturevalue("postgres").url
        with open_database(url) as db:  # the server lives for the module: each test starts empty
            db._run(lambda cur: [db._exec(cur, f"DELETE FROM {t}") for t in ("readings", "devices")])
    with Registry(open_database(url)) as reg:
        yield reg


class Publisher:
    """A device's MQTT client: publishes its readings at QoS 1 under its topic, waiting for each PUBACK."""

    def __init__(self, broker, pki, device, folder):
        cert, key = device.client_files(folder)
        self.device = device
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device.ICCID, protocol=mqtt.MQTTv5)
        self.client.tls_set(ca_certs=str(pki.broker_ca), certfile=str(cert), keyfile=str(key))
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def publish(self, *coses, topic=None):
        for cose in coses:
            self.client.publish(topic or self.device.topic, cose, qos=1).wait_for_publish(10)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publishers(broker, pki, tmp_path):
    made = []

    def publisher(device):
        made.append(Publisher(broker, pki, device, tmp_path))
        return made[-1]
    yield publisher
    for p in made:
        p.close()


def _worker(broker, pki, registry, devices_ca, name=None, leave=True):
    """A worker with a connection of its own to `registry`'s database, as a worker in a process of its own.
    It leaves its group when it stops (the broker lives for the module: a session left behind would keep a
    share of the next test's readings), unless it is to come back as `name`."""
    return Ingest(broker.address, pki.broker_ca, pki.ingest_cert, pki.ingest_key, Registry(registry.db.another()),
                  devices_ca.cert, client_id=f"ingest-test-{name or uuid.uuid4().hex[:8]}", leave=leave)


def test_every_reading_is_stored_with_its_verdict(broker, pki, registry, devices_ca, publishers):
    device = ReadingDevice(devices_ca, registry, iccid="8944000000000000011")
    stranger = ReadingDevice(devices_ca, None, iccid="8944000000000000012")  # never registered
    revoked = ReadingDevice(devices_ca, registry, iccid="8944000000000000013")
    registry.revoke(revoked.kid.hex())
    first = device.reading(EPOCH, 1)
    tampered = bytearray(device.reading(EPOCH, 2))
    tampered[-70] ^= 1  # inside the payload's float
    future = int(time.time()) + 3600
    sent = [(device, first, VERIFIED), (device, device.reading(EPOCH, 3), VERIFIED),
            (device, bytes(tampered), BAD_SIGNATURE), (device, first, REPLAYED),
            (stranger, stranger.reading(EPOCH, 1), UNKNOWN_KEY), (revoked, revoked.reading(EPOCH, 1), REVOKED),
            (device, device.reading(EPOCH, 4, time=future), STALE)]
    with _worker(broker, pki, registry, devices_ca) as worker:
        for dev, cose, _ in sent:
            publishers(dev).publish(cose)
        assert worker.wait_stored(len(sent)) == len(sent), worker.error
    rows = registry.db.readings()
    assert [r["verdict"] for r in rows] == [verdict for _, _, verdict in sent]
    assert [r["cose"] for r in rows] == [cose for _, cose, _ in sent]  # the rejected kept as they came
    assert rows[0]["topic"] == device.topic and rows[0]["iccid"] == device.ICCID and rows[0]["seq"] == 1
    assert rows[0]["measurements"] == [{"name": "temperature", "unit": "Cel", "value": 21.5}]
    assert "stored already" in rows[3]["reason"] and "revoked" in rows[5]["reason"]


def test_two_workers_share_the_readings_and_store_each_once(broker, pki, registry, devices_ca, publishers):
    devices = [ReadingDevice(devices_ca, registry, iccid=f"89440000000000001{i}") for i in range(4)]
    coses = [(d, d.reading(EPOCH, seq, value=seq / 10)) for seq in range(1, 26) for d in devices]
    with _worker(broker, pki, registry, devices_ca, "a") as a, _worker(broker, pki, registry, devices_ca, "b") as b:
        senders = [threading.Thread(target=publishers(d).publish, args=[c for dev, c in coses if dev is d])
                   for d in devices]
        for t in senders:
            t.start()
        for t in senders:
            t.join()
        end = time.monotonic() + 30
        while a.stored + b.stored < len(coses) and time.monotonic() < end:
            time.sleep(0.05)
    assert a.stored + b.stored == len(coses) and a.stored and b.stored, (a.stored, b.stored, a.error, b.error)
    rows = registry.db.readings()
    assert len(rows) == len(coses) and {r["verdict"] for r in rows} == {VERIFIED}
    assert len({(r["kid"], r["epoch"], r["seq"]) for r in rows}) == len(coses)


def test_a_reading_two_workers_both_receive_is_verified_once(registry, devices_ca):
    """The broker sends a reading again (to another worker, after a reconnect): the database decides."""
    from safebench.readings import Verifier

    device = ReadingDevice(devices_ca, registry)
    cose, verifier = device.reading(EPOCH, 7), Verifier(registry, devices_ca.cert)
    results = []
    threads = [threading.Thread(target=lambda: results.extend(
        registry.db.another().store_readings([(device.topic, cose, verifier.check(cose))]))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(v.code for v in results) == [REPLAYED, VERIFIED]
    assert [r["verdict"] for r in registry.db.readings()].count(VERIFIED) == 1


def test_what_comes_while_the_worker_is_away_is_stored_when_it_is_back(broker, pki, registry, devices_ca,
                                                                        publishers):
    device = ReadingDevice(devices_ca, registry)
    publisher = publishers(device)
    name = uuid.uuid4().hex[:8]
    with _worker(broker, pki, registry, devices_ca, name, leave=False) as worker:
        publisher.publish(device.reading(EPOCH, 1))
        assert worker.wait_stored(1) == 1
    publisher.publish(*(device.reading(EPOCH, seq) for seq in (2, 3, 4)))  # no worker connected
    with _worker(broker, pki, registry, devices_ca, name) as worker:  # the same client id: its session
        assert worker.wait_stored(3) == 3, worker.error
    assert [(r["seq"], r["verdict"]) for r in registry.db.readings()] == [(s, VERIFIED) for s in (1, 2, 3, 4)]


def test_readings_kept_for_an_away_worker_outlive_a_broker_restart(pki, registry, devices_ca, tmp_path):
    """What the broker holds for a worker that is away (its session: the worker did not leave) is persisted:
    a broker restart in between loses none of it. (Mosquitto 2.0 does not restore the shared subscription
    itself; the worker subscribes again when it connects, and a reading published before that has no
    subscriber, PUBACK 0x10, which the board keeps: hil_tests/test_mqtt.py.)"""
    device = ReadingDevice(devices_ca, registry)
    name = uuid.uuid4().hex[:8]
    with Broker(pki.files) as broker:
        with _worker(broker, pki, registry, devices_ca, name, leave=False):
            pass
        publisher = Publisher(broker, pki, device, tmp_path)
        try:
            publisher.publish(*(device.reading(EPOCH, seq) for seq in (1, 2, 3)))
        finally:
            publisher.close()
        broker.stop()
        broker.start()
        with _worker(broker, pki, registry, devices_ca, name) as worker:
            assert worker.wait_stored(3) == 3, worker.error
    assert [(r["seq"], r["verdict"]) for r in registry.db.readings()] == [(s, VERIFIED) for s in (1, 2, 3)]


def test_a_worker_that_leaves_takes_no_more_readings(broker, pki, registry, devices_ca, publishers):
    device = ReadingDevice(devices_ca, registry)
    publisher = publishers(device)
    with _worker(broker, pki, registry, devices_ca) as staying:
        with _worker(broker, pki, registry, devices_ca) as leaving:
            publisher.publish(*(device.reading(EPOCH, seq) for seq in range(1, 11)))
            assert staying.wait_stored(1) and leaving.wait_stored(1)
        publisher.publish(*(device.reading(EPOCH, seq) for seq in range(11, 21)))  # all to the one that stays
        assert staying.wait_stored(20 - leaving.stored) == 20 - leaving.stored
    assert len(registry.db.readings()) == 20


def test_a_worker_of_another_ca_is_refused(broker, pki, registry, devices_ca, tmp_path):
    from safebench.pki import service_identity

    cert, key = service_identity(CertificateAuthority.create("not the broker's clients' CA"), tmp_path, "ingest")
    worker = Ingest(broker.address, pki.broker_ca, cert, key, registry, devices_ca.cert, client_id="ingest-x")
    with pytest.raises(BrokerError, match="could not connect|refused|did not answer"):
        worker.connect(timeout=5)


def test_a_reading_with_a_time_in_bounds_is_stored_with_it(broker, pki, registry, devices_ca, publishers):
    device = ReadingDevice(devices_ca, registry)
    now = int(time.time())
    with _worker(broker, pki, registry, devices_ca) as worker:
        publishers(device).publish(device.reading(EPOCH, 1, time=now))
        assert worker.wait_stored(1) == 1
    row = registry.db.readings()[0]
    assert row["verdict"] == VERIFIED and row["reading_time"] == now
    assert datetime.datetime.fromtimestamp(row["stored_at"]) >= datetime.datetime.fromtimestamp(now)
