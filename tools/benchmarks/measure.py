"""Per-operation counts, modeled time and wall time on one simulated board.

Method: the board is rebooted before each operation (the modem and the SIM stay powered, as on a
real board after a reset); the first call is recorded as the cold call (modem set-up, stale
channels closed, the applet's channel opened); `warmup` more calls follow, then `runs` measured
calls. The trace between the file lengths before and after each measured call gives its counts;
the counts of a deterministic operation are the same in every run (`deterministic` says whether
they were). Wall time is the host's round trip of the JSON-RPC request, median over the runs.
`retained_bytes` is the heap the operation leaves in use (modules, caches): `info`'s mem_free (after
gc.collect) before the first call minus after the last.
"""

import json
import statistics
import time
from pathlib import Path

from cryptography import x509

from safebench.database import open_database
from safebench.pki import CA_CERT
from safebench.provision import register_device
from safebench.registry import Registry
from safebench.verify import certificate_chain
from safebench_simulator.profile import load as load_profile
from safebench_simulator.timing import TimingModel

from . import lower_bounds
from .operations import Context, NotAvailable, gather_facts
from .trace import COUNT_FIELDS, TraceReader


def percentile(values, p):
    """The p-th percentile (0..100) by linear interpolation between the closest ranks."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary_ms(seconds):
    ms = [s * 1000 for s in seconds]
    return {"median": round(statistics.median(ms), 1), "min": round(min(ms), 1), "max": round(max(ms), 1),
            "p95": round(percentile(ms, 95), 1), "n": len(ms)}


def mem_free(device):
    return device.call("info")["mem_free"]


def measure(op, ctx, reader, runs=5, warmup=2):
    """Measure `op` on ctx.device; returns the result dict (status "ok" or "not available")."""
    dev = ctx.device
    dev.reboot()
    reader.skip()
    free_before = mem_free(dev)
    try:
        with op.session(ctx, 1 + warmup + runs):
            first = op.request(ctx)
            cold = reader.take()
            op.check(ctx, first)
            for _ in range(warmup):
                op.check(ctx, op.request(ctx))
            reader.skip()
            walls, counts, critical, results = [], [], [], []
            for _ in range(runs):
                t0 = time.perf_counter()
                res = op.request(ctx)
                walls.append(time.perf_counter() - t0)
                if op.ahead_ins is None:
                    counts.append(reader.take())
                else:
                    before, ahead = reader.take_split(op.ahead_ins)
                    counts.append(before + ahead)
                    critical.append(before)
                op.check(ctx, res)
                reader.skip()
                results.append(res)
    except NotAvailable as e:
        return {"label": op.label, "status": "not available", "reason": str(e)}
    retained = free_before - mem_free(dev)
    out = {"label": op.label, "status": "ok",
           "counts": _medians(counts),
           "deterministic": len({c.key() for c in counts}) == 1,
           "model_ms": round(statistics.median(c.model_ms for c in counts), 1),
           "card_ms": round(statistics.median(c.card_ms for c in counts), 1),
           "wall_ms": summary_ms(walls), "cold": cold.as_dict(), "retained_bytes": retained}
    if critical:
        out["critical_path"] = {"counts": _medians(critical), "model_ms": round(statistics.median(
            c.model_ms for c in critical), 1)}
    if not out["deterministic"]:
        out["runs"] = [c.as_dict() for c in counts]
    peak = [r.get("heap_used_max") for r in results if isinstance(r, dict) and r.get("heap_used_max")]
    if peak:
        out["peak_bytes"] = max(peak)  # sampled by the firmware itself (tls.echo)
    return out


def _medians(counts):
    return {f: round(statistics.median(getattr(c, f) for c in counts)) for f in COUNT_FIELDS}


class Setup:
    """One board of a bench made ready to measure: registered, its card's facts and timing known."""

    def __init__(self, bench, device, work_dir):
        board = bench.board()
        self.card_path = Path(board["card"])
        card_doc = json.loads(self.card_path.read_text())
        profile = card_doc["profile"]
        self.timing = TimingModel.from_profile(profile)
        self.card = lower_bounds.card_from_image(card_doc)
        self.timing_source = {"profile": profile["name"], "baud": self.timing.baud,
                              "latency_ms": (profile.get("timing") or {}).get("latency_ms", {}),
                              "source": load_profile(profile["name"]).get("source", "")}
        self.ca_dir = bench.dir / "ca"
        ca_cert = x509.load_pem_x509_certificate((self.ca_dir / CA_CERT).read_bytes())
        work_dir = Path(work_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
        registry_path = work_dir / "registry.db"
        registry_path.unlink(missing_ok=True)
        registry = Registry(open_database(registry_path))
        self.info = device.connect(reboot=True)
        kid = register_device(device, ca_cert, registry)["kid"]
        cert = certificate_chain(registry.certificate_der(kid), ca_cert)
        self.facts = gather_facts(device)
        self.reader = TraceReader(board["trace"], self.timing.baud)
        self.ctx_fields = {"ca_cert": ca_cert, "cert": cert, "registry": registry, "ca_dir": self.ca_dir,
                           "tls_folder": work_dir / "tls"}
        self.ctx = Context(device, **self.ctx_fields)

    def bound(self, op, critical=False):
        b = (op.critical_bound if critical else op.bound)(self.facts, self.card, self.timing)
        return {**b.counts(self.card, self.timing), "notes": b.notes,
                "exchanges": [[x.what, x.command, x.response] for x in b.exchanges] + [[a.line] for a in b.at]}
