"""The benchmark's regression guard: today's counts and heap against tools/benchmarks/baseline.json.

One bench, one warm-up and one measured call per operation (the counts are deterministic), then
one fresh bench per operation at its baseline heap plus the 4K margin, where it must still work.
Fails when APDUs or AT commands grow at all, UART bytes by more than 2%, or the heap minimum by
more than 4K (tools/benchmarks/baseline.py). An operation the firmware does not offer is left out, with a warning.
"""

import warnings

import pytest

from benchmarks import baseline, fresh_bench, heap, measure, operations
from safebench.device import Device

pytestmark = pytest.mark.timeout(240)


def test_counts_and_heap_within_the_baseline(tmp_path):
    base = baseline.load()
    staged = fresh_bench.build(tmp_path / "build")
    measured, absent = {}, []
    ops = operations.by_key(list(base["operations"]))
    with fresh_bench.fresh_bench(tmp_path / "bench", "256K", staged=staged) as bench:
        with Device(bench.board()["port"]) as dev:
            setup = measure.Setup(bench, dev, tmp_path / "work")
            for op in ops:
                res = measure.measure(op, setup.ctx, setup.reader, runs=1, warmup=1)
                if res["status"] != "ok":
                    absent.append(op.key)
                    continue
                measured[op.key] = dict(res["counts"])
    search = heap.HeapSearch(tmp_path / "heap", setup.card_path, staged, setup.ctx_fields)
    for op in ops:
        if op.key in measured:
            at = base["operations"][op.key]["heap_kb"] + baseline.ABSOLUTE["heap_kb"]
            if not search.passes(op, at):
                measured[op.key]["heap_kb"] = f"more than {at}K ({search.notes.get(at)})"
    problems = baseline.regressions(_comparable(measured), base)
    problems += [f"{k}: heap_kb {v['heap_kb']}" for k, v in measured.items() if isinstance(v.get("heap_kb"), str)]
    assert not problems, "grew past the baseline (python -m benchmarks.run --update-baseline if intended):\n" \
        + "\n".join(problems)
    if absent:
        warnings.warn(f"not measured, not available on this firmware: {', '.join(absent)}", stacklevel=1)


def _comparable(measured):
    return {k: {f: v for f, v in values.items() if not isinstance(v, str)} for k, values in measured.items()}
