"""The committed baseline (tools/benchmarks/baseline.json) and the regression check against it.

The baseline holds what is deterministic: per operation the APDUs, AT commands and UART bytes each
way of one steady-state call, and the smallest heap it runs in. A measurement regresses when a
value grows past its margin: APDUs and AT commands not at all, bytes by more than 2% (a certificate
from another bench CA can be a few bytes longer), the heap by more than the 4K bisection step.
Getting smaller never fails; `python -m benchmarks.run --update-baseline` records the new values.
"""

import json
from pathlib import Path

from .trace import COUNT_FIELDS

PATH = Path(__file__).with_name("baseline.json")
FORMAT = "safebench-bench-baseline/1"
ABSOLUTE = {"apdus": 0, "at_commands": 0, "heap_kb": 4}
RELATIVE = {"bytes_to_modem": 0.02, "bytes_from_modem": 0.02}


class BaselineError(ValueError):
    """The baseline file is missing, malformed, or the results cannot make one."""


def from_results(operations):
    """A baseline from the `operations` of a results document; every measured one needs its heap minimum."""
    out = {}
    for key, op in operations.items():
        if op.get("status") != "ok":
            continue
        heap = (op.get("heap") or {}).get("min_kb")
        if heap is None:
            raise BaselineError(f"{key} has no heap minimum: run the heap search (no --no-heap) to update the baseline")
        out[key] = {**{f: op["counts"][f] for f in COUNT_FIELDS}, "heap_kb": heap}
    if not out:
        raise BaselineError("no operation was measured")
    return {"format": FORMAT, "operations": out}


def load(path=PATH):
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise BaselineError(f"cannot read the baseline {path}: {e}") from None
    if doc.get("format") != FORMAT or not isinstance(doc.get("operations"), dict):
        raise BaselineError(f"{path} is not a {FORMAT} document")
    return doc


def save(doc, path=PATH):
    Path(path).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def allowed(field, base):
    """The largest value of `field` that is not a regression from `base`."""
    if field in ABSOLUTE:
        return base + ABSOLUTE[field]
    return base * (1 + RELATIVE[field])


def regressions(measured, baseline):
    """Lines saying what grew past its margin. `measured`: key -> {field: value} (fields may be missing)."""
    out = []
    for key, base in sorted(baseline["operations"].items()):
        got = measured.get(key)
        if got is None:
            continue
        for field, value in sorted(got.items()):
            if field in base and value is not None and value > allowed(field, base[field]):
                out.append(f"{key}: {field} {value} > baseline {base[field]} (margin {_margin(field)})")
    return out


def _margin(field):
    return f"{ABSOLUTE[field]}" if field in ABSOLUTE else f"{RELATIVE[field]:.0%}"
