"""Mosquitto, the MQTT broker the rig and the tests start on 127.0.0.1 (docs/mqtt.md).

Configured for devices whose keys are in a SIM: TLS 1.3 only, a client certificate from the device CA
required, the user name taken from the certificate's commonName, and an ACL by which a device publishes
only under its own name and only the ingest reads. Persistent: the ingest's session (its subscription and
the readings queued for it) outlives a broker restart. Mosquitto started as root drops to its own user, so
its folder is handed to that user then.
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .errors import BrokerError
from .tls import ServerFiles, ServerProcess, free_port

MOSQUITTO = "mosquitto"
TOPIC = "safebench/{device}/readings"  # as the firmware's mqtt_rpc names it; {device}: the certificate's CN
INGEST_USER = "ingest"  # the commonName of the ingest's certificate: the one user that reads every topic
_ACL = (  # %u: the user name, i.e. the commonName of the client certificate
    "# each device publishes only under its own name\n"
    f"pattern write {TOPIC.format(device='%u')}\n"
    "# the ingest reads every device's readings, and publishes nothing\n"
    f"user {INGEST_USER}\n"
    f"topic read {TOPIC.format(device='+')}\n")


CRL_NAME = "client-crl.pem"
AUTOSAVE_S = 10  # how much a killed (not stopped) broker may forget


def config(port: int, folder: Path, crl=False) -> str:
    """mosquitto.conf for a listener on 127.0.0.1:`port`, its files in `folder` (with `crl`: client-crl.pem,
    the CRL of every client CA: OpenSSL then refuses a client whose issuer has none)."""
    return "\n".join((
        "per_listener_settings false",
        "allow_anonymous false",
        "persistence true",  # saved when it stops, and every AUTOSAVE_S: a restart loses no queued reading
        f"persistence_location {folder}/",
        f"autosave_interval {AUTOSAVE_S}",
        f"log_dest file {folder / 'mosquitto.log'}",
        "log_type error", "log_type warning", "log_type notice", "log_type information",
        "connection_messages true",
        f"acl_file {folder / 'acl'}",
        f"listener {port} 127.0.0.1",
        f"certfile {folder / 'server.pem'}",
        f"keyfile {folder / 'server.key'}",
        f"cafile {folder / 'client-ca.pem'}",
        "tls_version tlsv1.3",
        "require_certificate true",
        "use_identity_as_username true",
        *([f"crlfile {folder / CRL_NAME}"] if crl else []),
        ""))


def executable():
    """The mosquitto program (Debian installs it in /usr/sbin, which a user's PATH may lack), or None."""
    return shutil.which(MOSQUITTO) or shutil.which(MOSQUITTO, path="/usr/sbin")


class Broker(ServerProcess):
    """A Mosquitto process on 127.0.0.1:`port` (a free one by default) with the certificate, key and client CA
    of `files` (tls.make_server_files). A context manager: stopped on exit whatever happened, and its folder
    removed. Stopped, it can be started again, on the same port, with what it persisted (sessions, queued
    messages). Its files live in a folder of their own (Mosquitto started as root runs as its own user,
    which must reach them); `log` keeps what it logged. With `crl` (a PEM file of CRLs, revocation.publish)
    it refuses the TLS connection of a revoked client; `load_crl` gives it a newer one."""

    def __init__(self, files: ServerFiles, port=None, timeout=10.0, crl=None):
        self.files = files
        self.crl = crl
        self.port = port or free_port()
        self.timeout = timeout
        self.folder = None
        self._log = ""

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        exe = executable()
        if not exe:
            raise BrokerError("mosquitto is not installed (Debian package mosquitto; `make test` installs it)")
        if self.folder is None:  # a restart keeps the folder: its persisted sessions and messages
            self.folder = Path(tempfile.mkdtemp(prefix="safebench-mosquitto-"))
            for src, name in ((self.files.cert, "server.pem"), (self.files.key, "server.key"),
                              (self.files.ca, "client-ca.pem")):
                shutil.copyfile(src, self.folder / name)
            os.chmod(self.folder / "server.key", 0o600)
            if self.crl:
                shutil.copyfile(self.crl, self.folder / CRL_NAME)
            (self.folder / "acl").write_text(_ACL)
            (self.folder / "mosquitto.conf").write_text(config(self.port, self.folder, crl=bool(self.crl)))
            _hand_over(self.folder)
        conf = self.folder / "mosquitto.conf"
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                said = (self.proc.stderr.read().decode(errors="replace") + self.log()).strip().splitlines()
                raise BrokerError(f"mosquitto exited at start (status {self.proc.returncode}): "
                                  f"{said[-1] if said else 'it said nothing'}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise BrokerError(f"mosquitto did not listen on {self.address} within {self.timeout:.0f} s")

    def load_crl(self):
        """Take the CRL file again. Mosquitto 2.0 reads its crlfile only when it starts (a SIGHUP reloads the
        server's certificate, not the CRL: eclipse-mosquitto/mosquitto#35, #2916), so it restarts; what it
        persists (sessions, queued readings) outlives that, and the connections it had must connect again,
        each checked against the new CRL."""
        if not self.crl:
            raise BrokerError("this broker was started without a CRL file")
        temporary = self.folder / f"{CRL_NAME}.tmp"
        shutil.copyfile(self.crl, temporary)
        os.replace(temporary, self.folder / CRL_NAME)
        _hand_over(self.folder)
        self.stop()
        self.start()

    def stop(self):
        """Stop the process (Mosquitto saves what it persists); its folder stays for a restart."""
        super().stop()
        self.proc = None

    def __enter__(self):
        try:
            return super().__enter__()
        except BaseException:
            self._remove()
            raise

    def __exit__(self, *exc):
        self.stop()
        self._remove()

    def _remove(self):
        if self.folder is not None:
            self._log = self.log()
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def log(self) -> str:
        """What Mosquitto logged (connections, refusals), also after it stopped."""
        if self.folder is None:
            return self._log
        try:
            return (self.folder / "mosquitto.log").read_text(errors="replace")
        except OSError:
            return ""


def _hand_over(folder):
    """As root, Mosquitto runs as its own user: give it its folder (the key stays its alone)."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam(MOSQUITTO)
    except KeyError:
        return  # no such user: mosquitto stays root, and reads what root reads
    for path in (folder, *folder.iterdir()):
        os.chown(path, user.pw_uid, user.pw_gid)


class Subscriber:
    """An MQTT 5 client of the broker at `address` (HOST:PORT) reading `topic` at QoS 1, with a client
    certificate (`cert`, `key`: PEM files) and the broker's CA (`ca`). Messages land in `messages` as
    (topic, payload); `wait(n)` returns once n have come. A context manager: disconnected on exit."""

    def __init__(self, address, ca, cert, key, topic=None, client_id=""):
        import threading

        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.address, self.topic = address, topic or TOPIC.format(device="+")
        self.messages = []
        self._arrived = threading.Condition()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self._client.tls_set(ca_certs=str(ca), certfile=str(cert), keyfile=str(key))
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self.refused = None
        self.subscriptions = 0  # how often it subscribed: once per connection (paho reconnects on its own)

    def _on_subscribe(self, client, userdata, mid, codes, props):
        with self._arrived:
            self.subscriptions += 1
            self._arrived.notify_all()
        self._subscribed.set()

    def resubscribed(self, timeout=30.0):
        """Wait until the subscriber is back after its broker restarted (paho reconnects within seconds)."""
        with self._arrived:
            seen = self.subscriptions
            if not self._arrived.wait_for(lambda: self.subscriptions > seen, timeout):
                raise BrokerError(f"the subscriber did not reconnect to {self.address} within {timeout:.0f} s")

    def _on_connect(self, client, userdata, flags, reason, props):
        if reason.is_failure:
            self.refused = str(reason)
            self._subscribed.set()
        else:
            client.subscribe(self.topic, qos=1)

    def _on_message(self, client, userdata, msg):
        with self._arrived:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self._arrived.notify_all()

    def __enter__(self):
        host, _, port = self.address.rpartition(":")
        self._client.connect(host, int(port))
        self._client.loop_start()
        if not self._subscribed.wait(10) or self.refused:
            self.__exit__()
            raise BrokerError(f"could not subscribe to {self.topic} at {self.address}: {self.refused or 'no answer'}")
        return self

    def wait(self, n, timeout=30.0):
        """The first `n` messages, once they have come (fewer if `timeout` s pass first)."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.messages) >= n, timeout)
            return list(self.messages[:n])

    def __exit__(self, *exc):
        self._client.disconnect()
        self._client.loop_stop()
