"""One ingest worker: an MQTT 5 subscriber of every device's readings that trusts nothing it receives.

Each reading is checked on its own (`readings.Verifier`: signature, a registered kid, the certificate's
chain to the devices' CA, not revoked, time within bounds) and stored with its verdict, the rejected ones
too; the database stores a (kid, epoch, seq) verified once (`Database.store_readings`), which is the
ingest's replay check. Workers share the load through a shared subscription (`$share/GROUP/...`): the
broker hands each message to one of them, so a fleet grows by starting workers, not a bigger one.

Nothing received is lost by the ingest: a message is acknowledged to the broker (QoS 1, by hand) only once
its row is committed, and the worker's session outlives a disconnection (`clean_start` off), so what came
while it was away, or what it had not stored when it stopped, is delivered again. A stopped worker's session
keeps its share of the group's readings for it until it is back; a worker that is not coming back `leave`s:
it unsubscribes and stores what it was sent before it disconnects.
"""

import queue
import threading
import time

from ..broker import TOPIC
from ..errors import BrokerError
from ..readings import Verifier

SHARE_GROUP = "ingest"
SESSION_EXPIRY_S = 24 * 3600  # how long the broker keeps a stopped worker's messages
BATCH = 256  # readings stored in one transaction, at most
_TAKEN_OVER = 142  # MQTT 5 DISCONNECT reason: another client connected with this client id


class Ingest:
    """A worker reading `TOPIC` of every device from the broker at `address` (HOST:PORT) with TLS: the
    broker's CA `ca`, the worker's certificate and key `cert`, `key` (PEM files; commonName `ingest`),
    checking against `registry` (its database stores the readings) and the devices' CA `devices_ca`.

    `run()` works until `stop()` (or `count` readings); `start()` runs it in a thread, and the worker is a
    context manager that starts it and stops it. `on_stored(topic, verdict)` is told of each stored row."""

    def __init__(self, address, ca, cert, key, registry, devices_ca, client_id, group=SHARE_GROUP, on_stored=None,
                 leave=False):
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.address, self.client_id, self.registry = address, client_id, registry
        self.topic = f"$share/{group}/{TOPIC.format(device='+')}" if group else TOPIC.format(device="+")
        self.verifier = Verifier(registry, devices_ca)
        self.on_stored = on_stored or (lambda topic, verdict: None)
        self.stored = 0
        self.leave = leave  # on stop: leave the group for good (unsubscribe), not only disconnect
        self.error = None  # why the worker stopped on its own (refused, taken over, the database failed)
        self._inbox = queue.Queue()
        self._stopping = threading.Event()
        self._subscribed = threading.Event()
        self._unsubscribed = threading.Event()
        self._thread = None
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                                   manual_ack=True)
        self._client.tls_set(ca_certs=str(ca), certfile=str(cert), keyfile=str(key))
        self._client.reconnect_delay_set(1, 30)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_unsubscribe = lambda *args: self._unsubscribed.set()
        self._client.on_message = lambda client, userdata, msg: self._inbox.put(
            (msg.topic, bytes(msg.payload), msg.mid, msg.qos))
        self._client.on_disconnect = self._on_disconnect

    # ---- the MQTT side (paho's thread) -------------------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason, props):
        if reason.is_failure:
            self._fail(f"the broker {self.address} refused the ingest: {reason}")
        else:
            client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client, userdata, mid, codes, props):
        refused = [c for c in codes if c.is_failure]
        if refused:
            self._fail(f"the broker {self.address} refused the subscription {self.topic}: {refused[0]}")
        self._subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason, props):
        if getattr(reason, "value", None) == _TAKEN_OVER:
            self._fail(f"another ingest connected to {self.address} as {self.client_id}: give each worker its own "
                       "--worker name")

    def _fail(self, why):
        self.error = self.error or why
        self._stopping.set()
        self._subscribed.set()

    def connect(self, timeout=15.0):
        """Connect and subscribe, or raise BrokerError saying why not."""
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        host, _, port = self.address.rpartition(":")
        try:
            self._client.connect(host.strip("[]"), int(port), clean_start=False, properties=props)
        except OSError as e:  # refused, unreachable, or TLS (ssl.SSLError is an OSError)
            raise BrokerError(f"the ingest could not connect to the broker {self.address}: "
                              f"{getattr(e, 'reason', None) or e.strerror or e}") from None
        self._client.loop_start()
        if not self._subscribed.wait(timeout) or self.error:
            self._client.loop_stop()
            raise BrokerError(self.error or f"the broker {self.address} did not answer within {timeout:.0f} s")

    # ---- the storing side ----------------------------------------------------------------------------------

    def run(self, count=None):
        """Check and store readings until `stop()` or `count` stored; raises what stopped it on its own."""
        try:
            while not self._stopping.is_set() and (count is None or self.stored < count):
                batch = self._take(BATCH if count is None else min(BATCH, count - self.stored))
                if batch:
                    self._store(batch)
            if self.leave and not self.error:
                self._leave()
        finally:
            self._client.disconnect()
            self._client.loop_stop()
        if self.error:
            raise BrokerError(self.error)

    def _leave(self):
        """Unsubscribe; what the broker sent before its answer is stored (its answer comes after them)."""
        self._client.unsubscribe(self.topic)
        self._unsubscribed.wait(10)
        while batch := self._take(BATCH):
            self._store(batch)

    def _take(self, most):
        """The next messages: waits for one (a while), then takes what is there, up to `most`."""
        try:
            batch = [self._inbox.get(timeout=0.2)]
        except queue.Empty:
            return []
        while len(batch) < most:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _store(self, batch):
        """Check each, store all in one transaction, and only then acknowledge them to the broker."""
        received = [(topic, payload, self.verifier.check(payload)) for topic, payload, _, _ in batch]
        stored = self.registry.db.store_readings(received)
        for (topic, _, mid, qos), verdict in zip(batch, stored, strict=True):
            self._client.ack(mid, qos)
            self.stored += 1
            self.on_stored(topic, verdict)

    def stop(self):
        self._stopping.set()

    def start(self):
        """Connect, then run in a thread of its own (`stop()` ends it)."""
        self.connect()
        self._thread = threading.Thread(target=self._run_quietly, daemon=True, name=f"ingest {self.client_id}")
        self._thread.start()
        return self

    def _run_quietly(self):
        try:
            self.run()
        except BrokerError:
            pass  # kept in self.error
        except Exception as e:  # the database: kept for the caller, as run() would have raised it
            self.error = str(e)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        if self._thread:
            self._thread.join(10)

    def wait_stored(self, n, timeout=30.0):
        """Wait until `n` rows are stored (fewer if `timeout` s pass first); how many are."""
        end = time.monotonic() + timeout
        while self.stored < n and time.monotonic() < end and not self.error:
            time.sleep(0.05)
        return self.stored
