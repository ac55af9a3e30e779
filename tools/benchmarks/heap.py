"""The smallest heap an operation needs: bisection over `bench up --heap` settings.

A probe is a fresh bench at that heap (KB of a 32-bit board), the firmware copied on, the board
rebooted, and the operation run twice (the first call after boot opens the channel, the second is
the steady state) with its answer checked. The search assumes that an operation which succeeds at
some heap also succeeds with more: it keeps "fails at lo" and "succeeds at hi" and halves the gap
down to the step, so 16K..256K at 4K takes at most 7 probes.
"""

from cryptography.hazmat.primitives.serialization import Encoding

from safebench.device import Device
from safebench.errors import BenchError, DeployError, DeviceError, RpcError, VerificationError
from safebench.registry import kid_of

from . import fresh_bench
from .operations import CheckFailed, Context, NotAvailable

PROBE_CALLS = 2
FAILURES = (RpcError, DeviceError, BenchError, DeployError, CheckFailed, VerificationError, TimeoutError, OSError)


def smallest_passing(passes, lo, hi, step):
    """Smallest k in lo, lo+step, ..., hi with passes(k), assuming monotony; None if not even hi passes.

    lo itself is probed only when everything above it passed (so a heap too small to boot costs no
    probe in the usual case). Returns (k or None, [(k, passed), ...] in probe order)."""
    if lo > hi or step <= 0 or (hi - lo) % step:
        raise ValueError(f"bad range {lo}..{hi} step {step}: hi - lo must be a multiple of the step")
    tried = []

    def probe(k):
        ok = bool(passes(k))
        tried.append((k, ok))
        return ok

    if not probe(hi):
        return None, tried
    bad, good = lo - step, hi  # bad: the largest value known (or, below lo, taken) to fail
    while good - bad > step:
        mid = bad + (good - bad) // step // 2 * step
        if probe(mid):
            good = mid
        else:
            bad = mid
    return good, tried


class HeapSearch:
    """Probes on fresh benches in `state_dir`, all with the same card image and firmware build."""

    def __init__(self, state_dir, card, staged, ctx_fields, timeout=10.0, log=None):
        self.state_dir, self.card, self.staged = state_dir, card, staged
        self.ctx_fields = ctx_fields  # Context fields but the device: CA, certificate, registry, folders
        self.timeout = timeout
        self.log = log or (lambda msg: None)
        self.notes = {}

    def passes(self, op, heap_kb):
        """True when `op` works on a fresh board with `heap_kb` KB; NotAvailable goes through.

        A bench that does not come up or take the firmware is tried once more: mpremote's raw REPL
        entry fails now and then on a loaded host, which says nothing about the heap."""
        for attempt in (1, 2):
            try:
                return self._probe(op, heap_kb)
            except (BenchError, DeployError) as e:
                if attempt == 2:
                    return self._failed(op, heap_kb, e)
                self.log(f"    {op.key} at {heap_kb}K: {type(e).__name__}, trying once more")
            except NotAvailable:
                raise
            except FAILURES as e:
                return self._failed(op, heap_kb, e)

    def _failed(self, op, heap_kb, e):
        self.notes[heap_kb] = f"{type(e).__name__}: {' '.join(str(e).split())[:120]}"
        self.log(f"    {op.key} at {heap_kb}K: fails ({self.notes[heap_kb]})")
        return False

    def _probe(self, op, heap_kb):
        with fresh_bench.fresh_bench(self.state_dir, f"{heap_kb}K", card=self.card, staged=self.staged) as bench:
            with Device(bench.board()["port"], timeout=self.timeout) as dev:
                board_id = dev.connect(reboot=True)["board_id"]
                ctx = Context(dev, **self.ctx_fields)
                ctx.registry.bind(kid_of(ctx.cert.public_bytes(Encoding.DER)), board_id)  # the card moved to this probe's board: by us
                with op.session(ctx, PROBE_CALLS):
                    for _ in range(PROBE_CALLS):
                        op.check(ctx, op.request(ctx))
        self.log(f"    {op.key} at {heap_kb}K: ok")
        return True

    def search(self, op, lo=16, hi=256, step=4):
        """{"min_kb", "range", "probes": [[kb, ok, note]], "failure_below"}: the failure just under min_kb."""
        self.notes = {}
        best, tried = smallest_passing(lambda k: self.passes(op, k), lo, hi, step)
        fails_below = [k for k, ok in tried if not ok and best is not None and k < best]
        return {"min_kb": best, "range": [lo, hi, step],
                "probes": [[k, ok, self.notes.get(k, "")] for k, ok in tried],
                "failure_below": self.notes.get(max(fails_below)) if fails_below else None}
