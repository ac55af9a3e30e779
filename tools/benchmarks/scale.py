"""Many boards at once: signed readings per second through the host verifier, and the verifier alone.

Each board (its own simulated modem and SIM) runs the reading loop in its own host thread: call
`reading`, hand the COSE message to the verifier, repeat until the time is up. One verifier (this
thread) checks every message with the ingest's `safebench.readings.Verifier` against a registry of all
the boards, as a single host process would. Readings per second = readings verified / time from the start to
the last verification; latency = the JSON-RPC round trip of each `reading`, pooled over the boards.
On the simulated bench every board, modem and the verifier share the host's cores, so the numbers
say what the host side sustains, not what N real boards (each with its own CPU and modem) would do.
"""

import queue
import threading
import time

from safebench.readings import Verifier

from .measure import percentile

_DONE = object()


def _producer(dev, index, start, deadline, out, errors):
    try:
        dev.call("reading")  # warm-up: channel opened, identity read
        start.wait()
        while time.monotonic() < deadline[0]:
            t0 = time.perf_counter()
            res = dev.call("reading")
            out.put((index, time.perf_counter() - t0, bytes.fromhex(res["cose"])))
    except Exception as e:  # reported in the result; the other boards go on
        errors.append(f"board {index}: {type(e).__name__}: {e}")
        if not start.broken:
            start.abort()
    finally:
        out.put((index, None, _DONE))


def reading_loop(devices, registry, ca_cert, seconds, last_seq):
    """Run the loop on all `devices` for `seconds`; returns the throughput and latency summary."""
    n = len(devices)
    out, errors = queue.Queue(), []
    deadline = [0.0]

    def go():  # run by the barrier before any thread is let through
        deadline[0] = time.monotonic() + seconds

    start = threading.Barrier(n + 1, action=go)
    threads = [threading.Thread(target=_producer, args=(d, i, start, deadline, out, errors), daemon=True)
               for i, d in enumerate(devices)]
    for t in threads:
        t.start()
    try:
        start.wait()
        t0 = deadline[0] - seconds
    except threading.BrokenBarrierError:  # a board failed its warm-up: the others stop too
        t0 = time.monotonic()
    verified = failed = done = 0
    last = t0
    latencies, per_board, reasons = [], [0] * n, {}
    verifier = Verifier(registry, ca_cert)
    while done < n:
        index, latency, cose = out.get()
        if cose is _DONE:
            done += 1
            continue
        latencies.append(latency * 1000)
        verdict = verifier.check(cose, last_seq)
        last = time.monotonic()
        if verdict.ok:
            verified += 1
            per_board[index] += 1
        else:
            failed += 1
            reasons[verdict.reason] = reasons.get(verdict.reason, 0) + 1
    for t in threads:
        t.join(timeout=5)
    elapsed = max(last - t0, 1e-9)
    return {"boards": n, "verified": verified, "failed": failed, "failures": reasons, "errors": errors,
            "seconds": round(elapsed, 2), "per_second": round(verified / elapsed, 1),
            "per_board": per_board,
            "latency_ms": {"median": _round(percentile(latencies, 50)), "p95": _round(percentile(latencies, 95))}}


def _round(x):
    return None if x is None else round(x, 1)
