"""Readings from N boards through the broker into the database: what the deployed path sustains.

Each board (its own simulated modem and SIM) opens its MQTT session (TLS 1.3 with the SIM's keys) to
Mosquitto on loopback, then, in its own host thread, has the board take and publish readings
(`mqtt.publish`: sign, queue in flash, publish at QoS 1, acknowledged) until the time is up. One ingest
worker (`safebench.ingest.Ingest`) checks each and stores it in the bench's SQLite database. Readings per
second = readings stored / time from the start to the last one stored; latency = from the host's
`mqtt.publish` request (the board signs after it) to the ingest's commit of its row. As with `scale`, the
boards, the broker and the ingest share the host's cores.
"""

import tempfile
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from safebench import tls
from safebench.broker import Broker
from safebench.database import open_database
from safebench.ingest import Ingest
from safebench.pki import CA_CERT, bench_ca, service_identity
from safebench.registry import Registry

from .measure import percentile

CALL_TIMEOUT = 120.0


def run(bench_dir, devices, board_counts, seconds, db_path, log=print):
    """{"runs": [...]} for each count of `board_counts`, the first boards of `devices` (connected Devices
    whose SIMs are registered in the database at `db_path`)."""
    ca = bench_ca(bench_dir)
    ca_file = Path(bench_dir) / "ca" / CA_CERT
    stored = {}  # (kid, seq) -> when its row was committed
    lock = threading.Lock()

    def on_stored(topic, verdict):
        with lock:
            stored[(verdict.kid, verdict.seq)] = (time.perf_counter(), verdict.ok)

    with tempfile.TemporaryDirectory(prefix="safebench-e2e-") as tmp:
        files = tls.make_server_files(Path(tmp) / "broker", ca, ca.cert.public_bytes(Encoding.PEM))
        cert, key = service_identity(ca, Path(tmp) / "ingest", "ingest")
        registry = Registry(open_database(db_path))
        with Broker(files) as broker:
            opened = []
            try:
                for dev in devices[:max(board_counts)]:
                    dev.call("mqtt.connect", host="127.0.0.1", port=broker.port, server_name="localhost",
                             timeout=CALL_TIMEOUT)
                    opened.append(dev)
                with Ingest(broker.address, ca_file, cert, key, registry, ca.cert, client_id="bench-ingest",
                            group=None, on_stored=on_stored) as ingest:
                    runs = []
                    for n in board_counts:
                        log(f"  {n} board(s) through the broker for {seconds:g} s")
                        runs.append(_run(devices[:n], seconds, stored, lock, ingest))
            finally:
                for dev in opened:
                    dev.call("mqtt.close", timeout=CALL_TIMEOUT)
                registry.close()
    return {"runs": runs}


def _run(devices, seconds, stored, lock, ingest):
    n = len(devices)
    sent, errors = [[] for _ in devices], []
    deadline = [0.0]

    def go():
        deadline[0] = time.perf_counter() + seconds

    start = threading.Barrier(n + 1, action=go)

    def board(i, dev):
        try:
            start.wait()
            while time.perf_counter() < deadline[0]:
                t0 = time.perf_counter()
                res = dev.call("mqtt.publish", timeout=CALL_TIMEOUT)
                sent[i].append(((res["kid"].lower(), res["seq"]), t0, res["published"]))
        except Exception as e:  # reported in the result; the other boards go on
            errors.append(f"board {i}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=board, args=(i, d), daemon=True) for i, d in enumerate(devices)]
    for t in threads:
        t.start()
    start.wait()
    t0 = deadline[0] - seconds
    for t in threads:
        t.join(timeout=seconds + 2 * CALL_TIMEOUT)
    readings = [r for board_sent in sent for r in board_sent]
    wait_until = time.perf_counter() + 30
    while time.perf_counter() < wait_until and ingest.error is None:
        with lock:
            if all(key in stored for key, _, _ in readings):
                break
        time.sleep(0.05)
    with lock:
        arrived = [(stored[key], t) for key, t, _ in readings if key in stored]
    last = max((s[0] for s, _ in arrived), default=t0)
    latencies = [(s[0] - t) * 1000 for s, t in arrived]
    elapsed = max(last - t0, 1e-9)
    return {"boards": n, "taken": len(readings), "stored": len(arrived),
            "verified": sum(1 for s, _ in arrived if s[1]), "lost": len(readings) - len(arrived),
            "queued_on_board": sum(1 for _, _, published in readings if not published),
            "errors": errors + ([ingest.error] if ingest.error else []), "seconds": round(elapsed, 2),
            "per_second": round(len(arrived) / elapsed, 1),
            "latency_ms": {"median": _round(percentile(latencies, 50)), "p95": _round(percentile(latencies, 95))}}


def _round(x):
    return None if x is None else round(x, 1)
