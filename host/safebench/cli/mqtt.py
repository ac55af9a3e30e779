"""Commands on the MQTT path: publish (a board's signed readings to a broker) and broker (Mosquitto for the
simulated bench)."""

import argparse
import itertools
import json
import time
from pathlib import Path

from ..device import Device
from ..errors import NotDeliveredError, UsageError
from ..pki import CA_CERT, load_ca_cert
from .command import Command, add_how_many, target
from .identity import Verdicts, say_summary


def _host_port(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: give HOST:PORT, e.g. broker.example.com:8883")
    return host.strip("[]"), int(port)


def _seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds, from 0 to 86400")
    return value


def _keepalive(text):
    if not text.isdigit() or not 10 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: give the keep-alive in seconds, 10 to 65535")
    return int(text)


# ---- publish -------------------------------------------------------------------------------------

def _publish_arguments(parser):
    parser.add_argument("--broker", required=True, type=_host_port, metavar="HOST:PORT",
                        help="the MQTT broker (TLS 1.3, client certificates), e.g. the one `safebench broker` runs")
    parser.add_argument("--ca", help="CA certificate (PEM) the broker's certificate must chain to "
                                     "(default: the CA file on the SIM)")
    parser.add_argument("--server-name", help="the name the broker's certificate must have (default HOST)")
    add_how_many(parser, "publishing")
    parser.add_argument("--interval", type=_seconds, default=0.0, help="seconds between readings (default 0)")
    parser.add_argument("--keepalive", type=_keepalive, default=60,
                        help="MQTT keep-alive in seconds (default 60): pings go out while the board waits")


def _publish(args):
    """The board opens its MQTT session (TLS 1.3 with the SIM's keys), publishes readings at QoS 1, each
    printed once the broker has acknowledged it, and closes the session on the way out (also on Ctrl-C)."""
    port, _ = target(args)
    host, broker_port = args.broker
    params = {"host": host, "port": broker_port, "keepalive": args.keepalive}
    if args.ca:
        from cryptography.hazmat.primitives.serialization import Encoding

        params["ca"] = load_ca_cert(Path(args.ca)).public_bytes(Encoding.DER).hex()
    if args.server_name:
        params["server_name"] = args.server_name
    broker = f"{host}:{broker_port}"
    taken = reconnects = queued = 0
    with Device(port) as dev:
        dev.connect()
        opened = dev.call("mqtt.connect", timeout=300, **params)
        keepalive = opened["keepalive"]  # the broker's, if it set one
        queued = opened["queued"]
        _emit(args, {"event": "connected", "broker": broker, **opened})
        try:
            for i in itertools.count() if args.follow else range(args.count):
                if i and args.interval:
                    _wait(dev, args.interval, keepalive)
                res = dev.call("mqtt.publish", timeout=300)
                taken += 1
                reconnects += res["reconnects"]
                queued = res["queued"]
                _emit(args, {"event": "published" if res["published"] else "queued", **res})
        except KeyboardInterrupt:
            if not args.follow:
                raise
        finally:
            queued = dev.call("mqtt.close").get("queued", queued)
    res = {"broker": broker, "topic": opened["topic"], "readings": taken, "queued": queued, "reconnects": reconnects}
    if queued:  # safe in the board's flash, but not delivered: say so, and exit 1
        raise NotDeliveredError(f"{queued} readings wait in the board's outbox, not taken by the broker: they go out "
                                "with the board's next session")
    return res


def _wait(dev, seconds, keepalive):
    """Sleep `seconds`, pinging the broker every half keep-alive so it keeps the session."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, keepalive / 2))
        if end - time.monotonic() > 0:
            dev.call("mqtt.ping", timeout=60)


def _emit(args, record):
    print(json.dumps(record) if args.json else _say_record(record), flush=True)


def _say_record(r):
    if r["event"] == "connected":
        return (f"connected to {r['broker']} as {r['client_id']} ({r['version']} {r['cipher']}, broker "
                f"{r['server_subject']}); publishing to {r['topic']}" + _outbox_words(r))
    if r["event"] == "subscribed":
        return (f"ingest subscribed to {r['topic']} at {r['broker']}, storing each reading with its verdict in "
                f"{r['database']}. Ctrl-C stops it.")
    if r["event"] == "listening":
        return (f"Mosquitto on {r['broker']} (TLS 1.3, client certificates of the bench CA, revoked ones refused: "
                f"{r['crl']}); devices publish to {r['topics']}. Ctrl-C stops it.")
    if r["event"] == "crl":
        return f"Mosquitto on {r['broker']} restarted with the new CRL {r['crl']}: revoked devices are refused"
    fate = (f"published to {r['topic']} (packet {r['packet_id']})" if r["published"] else
            f"queued on the board ({r['error']})")
    return f"seq {r['seq']} of epoch {r['epoch']} {fate}" + _outbox_words(r)


def _outbox_words(r):
    """What the board's outbox did beside: earlier readings sent, readings still waiting, reconnects."""
    earlier = r["sent"] - r.get("published", 0)  # sent in this request, but taken before its reading
    words = [text for count, text in ((earlier, f"{earlier} queued earlier sent"), (r["queued"], f"{r['queued']} waiting"),
                                      (r["reconnects"], f"{r['reconnects']} reconnects")) if count]
    return f"; {', '.join(words)}" if words else ""


def _say_published(res):
    return [f"{res['readings']} readings taken and published to {res['topic']} at {res['broker']}"]


# ---- broker --------------------------------------------------------------------------------------

def _broker_arguments(parser):
    parser.add_argument("--listen-port", type=int, default=8883, help="port on 127.0.0.1 (default 8883)")


def _broker(args):
    """Mosquitto on 127.0.0.1 for the simulated bench: its certificate from the bench CA (the simulated SIMs'
    trust anchor), devices of the bench CA and of the fleet CA (enrolled ones) as clients; until Ctrl-C."""
    import tempfile

    from cryptography.hazmat.primitives.serialization import Encoding

    from .. import revocation, tls
    from ..broker import TOPIC, Broker
    from ..est.fleet import device_cas
    from ..pki import bench_ca
    from ..registry import Registry

    ca = bench_ca(args.state)
    if not 0 < args.listen_port < 65536:
        raise UsageError(f"--listen-port {args.listen_port}: give 1..65535")

    def publish_crl():  # a fresh CRL: an OpenSSL peer refuses every client once it is past its next update
        with Registry.of_state(args.state) as registry:
            return Path(revocation.publish(args.state, registry, device_cas(args.state))["crl"])

    crl = publish_crl()
    clients = b"".join(c.cert.public_bytes(Encoding.PEM) for c in device_cas(args.state))  # enrolled ones too
    with tempfile.TemporaryDirectory() as tmp:
        files = tls.make_server_files(tmp, ca, clients)
        with Broker(files, port=args.listen_port, crl=crl) as broker:
            _emit(args, {"event": "listening", "broker": broker.address, "topics": TOPIC.format(device="<ICCID>"),
                         "crl": str(crl)})
            published = crl.stat().st_mtime_ns
            try:
                while broker.proc.poll() is None:
                    time.sleep(0.5)
                    if revocation.is_due(crl):
                        publish_crl()
                    if crl.stat().st_mtime_ns != published:  # published again, by `safebench revoke` or above
                        published = crl.stat().st_mtime_ns
                        broker.load_crl()
                        _emit(args, {"event": "crl", "broker": broker.address, "crl": str(crl)})
            except KeyboardInterrupt:
                pass
            stopped = broker.proc.poll()
    return {"broker": broker.address, "exit_status": stopped}


# ---- ingest --------------------------------------------------------------------------------------

def _ingest_arguments(parser):
    from ..ingest import SHARE_GROUP

    parser.add_argument("--broker", required=True, type=_host_port, metavar="HOST:PORT",
                        help="the MQTT broker the devices publish to, e.g. the one `safebench broker` runs")
    parser.add_argument("--db", metavar="URL",
                        help="the database of the registry and the readings: a file (SQLite), sqlite:///PATH or "
                             "postgresql://USER@HOST:PORT/NAME (default: the state's safebench.db)")
    parser.add_argument("--ca", help="CA certificate (PEM) the broker's certificate must chain to (default: the bench CA)")
    parser.add_argument("--devices-ca", help="CA certificate (PEM) of the devices (default: the bench CA and the "
                                             "fleet CA of enrolled devices)")
    parser.add_argument("--cert", help="the ingest's client certificate (PEM, commonName ingest), with --key "
                                       "(default: one from the bench CA, made in <state>/ingest the first time)")
    parser.add_argument("--key", help="the private key (PEM) of --cert")
    parser.add_argument("--worker", default="1", metavar="NAME",
                        help="this worker's name, its MQTT client id ingest-<host>-NAME: each worker on a host its "
                             "own (default 1)")
    parser.add_argument("--share", default=SHARE_GROUP, metavar="GROUP",
                        help=f"the shared subscription's group: the workers of one group share the readings "
                             f"(default {SHARE_GROUP})")
    parser.add_argument("--leave", action="store_true",
                        help="on the way out, leave the group for good: otherwise the broker keeps this worker's "
                             "share of the readings for it until it is back")
    parser.add_argument("--count", type=_positive, help="stop once this many readings are stored (default: until Ctrl-C)")


def _positive(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number, 1 or more")
    return int(text)


def _ingest(args):
    """Subscribe to every device's readings, check each on its own and store it with its verdict, printing
    each as it is stored; until Ctrl-C (or --count). Exit status 1 if any was rejected."""
    import socket

    from ..est.fleet import fleet_ca_cert
    from ..ingest import Ingest
    from ..pki import bench_ca, service_identity
    from ..registry import Registry

    if (args.cert is None) != (args.key is None):
        raise UsageError("--cert and --key go together")
    bench_ca_file = Path(args.state) / "ca" / CA_CERT
    broker_ca, devices_ca_file = args.ca or bench_ca_file, args.devices_ca or bench_ca_file
    fleet = None if args.devices_ca else fleet_ca_cert(args.state)  # the enrolled devices' CA, once there is one
    devices_ca = [load_ca_cert(devices_ca_file)] + ([fleet] if fleet else [])
    load_ca_cert(broker_ca)  # a CA that is no certificate is one line, not a TLS failure
    cert, key = (args.cert, args.key) if args.cert else service_identity(bench_ca(args.state),
                                                                         Path(args.state) / "ingest", "ingest")
    host, port = args.broker
    verdicts = Verdicts(args)
    with Registry.of_state(args.state, args.db) as registry:
        worker = Ingest(f"{host}:{port}", broker_ca, cert, key, registry, devices_ca,
                        client_id=f"ingest-{socket.gethostname()}-{args.worker}", group=args.share,
                        on_stored=lambda topic, verdict: verdicts.add(verdict), leave=args.leave)
        worker.connect()
        _emit(args, {"event": "subscribed", "broker": f"{host}:{port}", "topic": worker.topic,
                     "database": registry.where})
        try:
            worker.run(args.count)
        except KeyboardInterrupt:
            pass
        return {"broker": f"{host}:{port}", **verdicts.summary(devices_ca_file, registry.where)}


COMMANDS = (
    Command(("publish",), "have a board publish signed readings to an MQTT broker over TLS 1.3", _publish,
            _publish_arguments, _say_published, target=True, streams=True),
    Command(("ingest",), "check every reading from the broker and store it with its verdict in the database",
            _ingest, _ingest_arguments, say_summary, streams=True),
    Command(("broker",), "run Mosquitto on 127.0.0.1 for the simulated bench until Ctrl-C", _broker,
            _broker_arguments, lambda res: [f"broker {res['broker']} stopped"], streams=True),
)
