"""The results document as readable Markdown: the operations table, the scale table, the method."""


def _vs(ours, bound, unit=""):
    """`ours / bound (ratio×)`."""
    if ours is None:
        return "—"
    if bound in (None, 0):
        return f"{ours}{unit}"
    return f"{ours}{unit} / {bound}{unit} ({ours / bound:.2f}×)"


def _heap(op):
    heap = op.get("heap")
    if not heap:
        return "not searched"
    lo, hi, _ = heap["range"]
    k = heap["min_kb"]
    if k is None:
        return f"> {hi}K"
    text = f"≤ {lo}K" if k == lo else f"{k}K"
    extra = []
    if op.get("peak_bytes"):
        extra.append(f"peak {op['peak_bytes'] / 1024:.0f} KB")
    if op.get("retained_bytes") is not None:
        extra.append(f"keeps {op['retained_bytes'] / 1024:.0f} KB")
    return text + (f" ({', '.join(extra)}†)" if extra else "")


def operations_table(results):
    rows = ["| operation | APDUs | AT commands | UART bytes → modem | UART bytes ← modem | modeled ms (real hw) "
            "| sim wall ms (median) | heap min |",
            "|---|---|---|---|---|---|---|---|"]
    for op in results["operations"].values():
        if op["status"] != "ok":
            rows.append(f"| {op['label']} | {op['status']}: {op.get('reason') or op.get('error', '')} |||||||")
            continue
        c, b = op["counts"], op.get("bound") or {}
        mark = "" if op.get("deterministic", True) else " (varies)"
        rows.append(f"| {op['label']}{mark} | {_vs(c['apdus'], b.get('apdus'))} | {_vs(c['at_commands'], b.get('at_commands'))} "
                    f"| {_vs(c['bytes_to_modem'], b.get('bytes_to_modem'))} "
                    f"| {_vs(c['bytes_from_modem'], b.get('bytes_from_modem'))} "
                    f"| {_vs(op['model_ms'], b.get('model_ms'))} | {op['wall_ms']['median']} | {_heap(op)} |")
    setup = results.get("setup")
    if setup:
        c, b = setup["counts"], setup["bound"]
        rows.append(f"| + first SIM call after boot | {_vs(c['apdus'], b['apdus'])} | {_vs(c['at_commands'], b['at_commands'])} "
                    f"| {_vs(c['bytes_to_modem'], b['bytes_to_modem'])} | {_vs(c['bytes_from_modem'], b['bytes_from_modem'])} "
                    f"| {_vs(round(c['model_ms'], 1), b['model_ms'])} | | |")
    return "\n".join(rows)


def scale_table(scale):
    rows = ["| boards | readings verified / s | latency median ms | latency p95 ms | verified | failed |",
            "|---|---|---|---|---|---|"]
    for r in scale["runs"]:
        bad = r["failed"] + len(r["errors"])
        rows.append(f"| {r['boards']} | {r['per_second']} | {r['latency_ms']['median']} | {r['latency_ms']['p95']} "
                    f"| {r['verified']} | {bad} |")
    v = scale.get("verifier") or {}
    if v.get("per_second"):
        rows.append(f"\nHost verifier alone (one process, in-process `readings.check`): **{v['per_second']} COSE "
                    f"verifications/s** over {v['distinct']} distinct readings.")
    return "\n".join(rows)


def markdown(results):
    t = results["timing"]
    lat = ", ".join(f"{k} {v} ms" for k, v in t["latency_ms"].items())
    m = results["method"]
    parts = [
        "# safebench benchmark results",
        "",
        f"{results['created']} · firmware {results['firmware'].get('firmware')} on MicroPython "
        f"{results['firmware'].get('micropython')} (unix port) · {results['host']['cpus']} CPU(s) · "
        f"{results['elapsed_s']} s",
        "",
        "Each cell: **ours / lower bound (ratio)**. Counts are of one steady-state call (board rebooted, one "
        f"cold call, {m['warmup']} warm-up calls, then {m['runs']} measured calls; counts from the modem trace "
        "between the file lengths before and after each call). Modeled time = the card latencies and the UART "
        f"at {t['baud']} baud (10 bits per byte); it leaves out the board's own CPU time and the network. "
        "Wall time is on the simulated bench.",
        "",
        operations_table(results),
        "",
        "Heap min: the smallest `bench up --heap` (KB of a 32-bit board) at which a fresh board runs the "
        "operation, by bisection. † Bytes on the 64-bit unix-port VM (objects there take up to twice a 32-bit "
        "board's): `keeps` = mem_free before the first call minus after the last (modules, caches), `peak` = "
        "the live-heap high-water mark the firmware samples during a TLS handshake.",
        "",
        f"Card latencies (profile `{t['profile']}`): {lat}. Source: {t['source']}",
    ]
    if results.get("scale"):
        parts += ["", "## Many boards", "", scale_table(results["scale"])]
    if results.get("regressions"):
        parts += ["", "## Regressions against tools/benchmarks/baseline.json", ""]
        parts += [f"- {line}" for line in results["regressions"]]
    return "\n".join(parts) + "\n"
