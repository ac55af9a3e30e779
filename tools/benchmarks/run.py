"""`make bench`: the benchmark suite on simulated benches (docs/benchmarks.md).

    python -m benchmarks.run [--runs 5] [--ops sim_info,sign_message,...] [--no-heap] [--no-scale] [--no-ingest] [--no-enrolment]
        [--boards 1,2,4,8] [--seconds 5] [--heap-range 16:256:4] [--update-baseline] [--check]
        [--no-pico] [--pico-images v1.28.0[,v1.22.0]] [--pico-step 1] [--pico-time-runs 2]

Writes `.bench/results.json` and `.bench/results.md` (`--out`), prints the table. Benches live in
`.bench/benchmarks/` (`--state`), apart from the bench `safebench bench up` uses, and are stopped
on exit, Ctrl-C or SIGTERM. Exit status 1 when an operation failed or, with `--check`, when a count
or heap minimum grew past the baseline's margin; 2 on bad arguments. The emulated Pico's heap minima and
board time (`pico`) run when the emulator is installed, and are reported skipped otherwise.
"""

import argparse
import contextlib
import datetime
import json
import os
import signal
import sys
import time
from pathlib import Path

from cryptography import x509

from safebench.database import open_database
from safebench.device import Device
from safebench.errors import BenchError, BoardError, DeployError, DeviceError
from safebench.pki import CA_CERT
from safebench.provision import register_device
from safebench.registry import Registry

from . import (
    baseline,
    end_to_end,
    enrolment,
    fresh_bench,
    heap,
    ingest_rate,
    lower_bounds,
    measure,
    pico,
    report,
    scale,
)
from .operations import NotAvailable, by_key
from .trace import COUNT_FIELDS

MAIN_HEAP = "256K"


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


def _ints(text, sep=","):
    try:
        return [int(x) for x in text.split(sep)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by {sep!r}, not {text!r}") from None


def _parser():
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="measured calls per operation (default 5)")
    ap.add_argument("--warmup", type=int, default=2, help="calls before measuring (default 2)")
    ap.add_argument("--ops", help="comma-separated operations (default: all)")
    ap.add_argument("--no-heap", action="store_true", help="skip the heap bisection")
    ap.add_argument("--heap-range", type=lambda t: _ints(t, ":"), default=[16, 256, 4],
                    help="LO:HI:STEP in KB (default 16:256:4)")
    ap.add_argument("--no-scale", action="store_true", help="skip the many-boards run")
    ap.add_argument("--no-ingest", action="store_true", help="skip the ingest's verification rate")
    ap.add_argument("--no-enrolment", action="store_true", help="skip the enrolment server's rate (1,000 devices)")
    ap.add_argument("--boards", type=_ints, default=[1, 2, 4, 8], help="board counts (default 1,2,4,8)")
    ap.add_argument("--seconds", type=float, default=5.0, help="reading loop per board count (default 5)")
    ap.add_argument("--state", default=".bench/benchmarks", help="folder of the benchmark benches")
    ap.add_argument("--out", default=".bench", help="folder of results.json and results.md")
    ap.add_argument("--update-baseline", action="store_true", help=f"write {baseline.PATH.name} from this run")
    ap.add_argument("--check", action="store_true", help="exit 1 when a value grew past the baseline's margin")
    ap.add_argument("--no-pico", action="store_true", help="skip the emulated Pico (heap by ballast, board time)")
    ap.add_argument("--pico-images", type=_images, default=[pico.IMAGES[0]],
                    help=f"official MicroPython images to run, of {','.join(pico.IMAGES)} (default {pico.IMAGES[0]})")
    ap.add_argument("--pico-step", type=int, default=1, help="KB step of the Pico's heap bisection (default 1)")
    ap.add_argument("--pico-time-runs", type=int, default=2,
                    help="guest-timed calls per operation on the Pico, 0 for none (default 2)")
    return ap


def _images(text):
    versions = text.split(",")
    unknown = [v for v in versions if v not in pico.IMAGES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown image(s) {', '.join(unknown)}; known: {', '.join(pico.IMAGES)}")
    return versions


def measure_operations(ops, args, state, staged, results):
    with fresh_bench.fresh_bench(state / "main", MAIN_HEAP, staged=staged) as bench:
        with Device(bench.board()["port"]) as dev:
            setup = measure.Setup(bench, dev, state / "main-work")
            results["firmware"] = setup.info
            results["timing"] = setup.timing_source
            results["facts"] = vars(setup.facts)
            for op in ops:
                _log(f"  {op.label}")
                try:
                    res = measure.measure(op, setup.ctx, setup.reader, args.runs, args.warmup)
                except Exception as e:  # one broken operation must not hide the others' numbers
                    res = {"label": op.label, "status": "error", "error": f"{type(e).__name__}: {e}"}
                    with contextlib.suppress(Exception):  # a board that stays down fails the next ones too
                        dev.connect(reboot=True)
                if res["status"] == "ok":
                    res["bound"] = setup.bound(op)
                    res["ratio"] = {f: _ratio(res["counts"][f], res["bound"][f]) for f in COUNT_FIELDS}
                    if "critical_path" in res:
                        res["critical_path"]["bound"] = setup.bound(op, critical=True)
                results["operations"][op.key] = res
            info = results["operations"].get("sim_info")
            if info and info["status"] == "ok":
                cold = info["cold"]
                extra = {f: cold[f] - info["counts"][f] for f in COUNT_FIELDS}
                extra["model_ms"] = round(cold["model_ms"] - info["model_ms"], 1)
                results["setup"] = {"counts": extra, "bound": lower_bounds.channel_setup(setup.card).counts(
                    setup.card, setup.timing)}
    return setup


def search_heaps(ops, args, state, staged, setup, results):
    lo, hi, step = args.heap_range
    search = heap.HeapSearch(state / "heap", setup.card_path, staged, setup.ctx_fields, log=_log)
    for op in ops:
        res = results["operations"][op.key]
        if res["status"] != "ok":
            continue
        _log(f"  heap: {op.label}")
        try:
            res["heap"] = search.search(op, lo, hi, step)
        except NotAvailable:
            res["heap"] = None


def run_pico(ops, args, state):
    """{version: results} of the emulated Pico, or {"skipped": why} when it cannot run here."""
    missing = pico.harness_missing()
    if missing:
        _log(f"emulated Pico skipped: {missing}")
        return {"skipped": missing}
    lo = args.heap_range[0]
    out = {}
    for version in args.pico_images:
        _log(f"emulated Pico, MicroPython {version}")
        try:
            out[version] = pico.measure_image(version, ops, state, state / "pico-build", lo, args.pico_step,
                                              args.pico_time_runs, _log)
        except (BenchError, BoardError, DeployError, DeviceError) as e:  # this image's figures are lost, not the others'
            _log(f"  failed: {type(e).__name__}: {e}")
            out[version] = {"status": "error", "error": f"{type(e).__name__}: {e}"}
    return out


def run_scale(args, state, staged):
    n_max = max(args.boards)
    with fresh_bench.fresh_bench(state / "scale", MAIN_HEAP, boards=n_max, staged=staged) as bench:
        ca = x509.load_pem_x509_certificate((bench.dir / "ca" / CA_CERT).read_bytes())
        reg_path = bench.dir / "registry.db"
        reg_path.unlink(missing_ok=True)
        registry = Registry(open_database(reg_path))
        devices = [Device(b["port"]) for b in bench.status()["boards"]]
        try:
            for dev in devices:
                dev.connect(reboot=True)
                register_device(dev, ca, registry)
            last_seq, runs = {}, []
            for n in args.boards:
                _log(f"  {n} board(s) for {args.seconds:g} s")
                runs.append(scale.reading_loop(devices[:n], registry, ca, args.seconds, last_seq))
            broker = end_to_end.run(bench.dir, devices, args.boards, args.seconds, reg_path, _log)
        finally:
            for dev in devices:
                dev.close()
    return {"runs": runs, "broker": broker}


def _ratio(ours, bound):
    return round(ours / bound, 2) if bound else None


def _terminate(signum, frame):
    raise KeyboardInterrupt  # leave through the finally blocks, which stop the benches


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        ops = by_key(args.ops.split(",") if args.ops else None)
    except KeyError as e:
        _parser().error(str(e.args[0]))
    if args.pico_step < 1 or args.pico_time_runs < 0:
        _parser().error("--pico-step must be 1 or more, --pico-time-runs 0 or more")
    if args.update_baseline and args.no_heap:
        _parser().error("--update-baseline needs the heap search: drop --no-heap")
    signal.signal(signal.SIGTERM, _terminate)
    state, out = Path(args.state).absolute(), Path(args.out)
    t0 = time.monotonic()
    results = {"format": "safebench-bench-results/1",
               "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "host": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
               "method": {"runs": args.runs, "warmup": args.warmup, "main_heap": MAIN_HEAP,
                          "heap_range_kb": args.heap_range, "boards": args.boards, "seconds": args.seconds},
               "operations": {}}
    try:
        _log("building the firmware")
        staged = fresh_bench.build(state / "build")
        _log("operations")
        setup = measure_operations(ops, args, state, staged, results)
        if not args.no_heap:
            search_heaps(ops, args, state, staged, setup, results)
        if not args.no_pico:
            results["pico"] = run_pico(ops, args, state)
        if not args.no_ingest:
            _log("ingest verification rate")
            results["ingest"] = ingest_rate.measure()
        if not args.no_enrolment:
            _log(f"enrolment server: {enrolment.DEVICES} devices")
            results["enrolment"] = enrolment.measure()
        if not args.no_scale:
            _log("many boards")
            results["scale"] = run_scale(args, state, staged)
    except KeyboardInterrupt:
        _log("interrupted: benches stopped")
        return 130
    except (BenchError, DeployError, DeviceError) as e:  # the bench itself failed: no numbers to show
        _log(f"benchmark failed: {type(e).__name__}: {e}")
        return 1
    results["elapsed_s"] = round(time.monotonic() - t0)
    base = baseline.load() if baseline.PATH.exists() else None
    if base:
        results["regressions"] = baseline.regressions(_measured(results), base)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    text = report.markdown(results)
    (out / "results.md").write_text(text)
    print(text)
    if args.update_baseline:  # operations not run this time keep their old values
        try:
            doc = baseline.from_results(results["operations"])
        except baseline.BaselineError as e:
            _log(f"baseline not written: {e}")
            return 1
        doc["operations"] = {**(base["operations"] if base else {}), **doc["operations"]}
        baseline.save(doc)
        _log(f"baseline written to {baseline.PATH}")
    failed = [k for k, op in results["operations"].items() if op["status"] == "error"]
    if failed:
        _log(f"failed: {', '.join(failed)}")
    return 1 if failed or (args.check and results.get("regressions")) else 0


def _measured(results):
    out = {}
    for key, op in results["operations"].items():
        if op["status"] == "ok":
            out[key] = dict(op["counts"])
            if op.get("heap"):  # not found in the range: at least one step above it
                h = op["heap"]
                out[key]["heap_kb"] = h["min_kb"] if h["min_kb"] is not None else h["range"][1] + h["range"][2]
    return out


if __name__ == "__main__":
    sys.exit(main())
