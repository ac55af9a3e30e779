"""The results document as readable Markdown: the operations table, the scale table, the method."""


CRITICAL_GOAL = {"apdus": 10, "model_ms": 800}  # of a TLS handshake (issue #13)


def _vs(ours, bound, unit=""):
    """`ours / bound (ratio×)`."""
    if ours is None:
        return "—"
    if bound in (None, 0):
        return f"{ours}{unit}"
    return f"{ours}{unit} / {bound}{unit} ({ours / bound:.2f}×)"


def _min_kb(heap):
    """A heap search's minimum in KB: `≤ lo` at the bottom of its range, `> hi` when even the top failed."""
    lo, hi, _ = heap["range"]
    k = heap["min_kb"]
    if k is None:
        return f"> {hi}K"
    return f"≤ {lo}K" if k == lo else f"{k}K"


def _heap(op):
    heap = op.get("heap")
    if not heap:
        return "not searched"
    text = _min_kb(heap)
    if heap["min_kb"] is None:
        return text
    extra = []
    if op.get("peak_bytes"):
        extra.append(f"peak {op['peak_bytes'] / 1024:.0f} KB")
    if op.get("retained_bytes") is not None:
        extra.append(f"keeps {op['retained_bytes'] / 1024:.0f} KB")
    return text + (f" ({', '.join(extra)}†)" if extra else "")


def operations_table(results):
    picos = pico_images(results)
    extra = "".join(f" heap min, Pico {v} |" for v in picos) + (" goal |" if picos else "")
    rows = ["| operation | APDUs | AT commands | UART bytes → modem | UART bytes ← modem | modeled ms (real hw) "
            f"| sim wall ms (median) | heap min, unix port |{extra}",
            "|---|---|---|---|---|---|---|---|" + "---|" * (len(picos) + bool(picos))]
    for key, op in results["operations"].items():
        pico_cells = "".join(f" {pico_heap(results['pico'][v]['operations'].get(key))} |" for v in picos)
        pico_cells += f" {goal(key)} |" if picos else ""
        if op["status"] != "ok":
            rows.append(f"| {op['label']} | {op['status']}: {op.get('reason') or op.get('error', '')} |||||||"
                        f"{pico_cells}")
            continue
        c, b = op["counts"], op.get("bound") or {}
        mark = "" if op.get("deterministic", True) else " (varies)"
        rows.append(f"| {op['label']}{mark} | {_vs(c['apdus'], b.get('apdus'))} | {_vs(c['at_commands'], b.get('at_commands'))} "
                    f"| {_vs(c['bytes_to_modem'], b.get('bytes_to_modem'))} "
                    f"| {_vs(c['bytes_from_modem'], b.get('bytes_from_modem'))} "
                    f"| {_vs(op['model_ms'], b.get('model_ms'))} | {op['wall_ms']['median']} | {_heap(op)} |{pico_cells}")
        crit = op.get("critical_path")
        if crit:
            c, b = crit["counts"], crit.get("bound") or {}
            rows.append(f"| ↳ its critical path (the key pair made by the handshake before; goal ≤ {CRITICAL_GOAL['apdus']}"
                        f" APDUs, ≤ {CRITICAL_GOAL['model_ms']} ms) | {_vs(c['apdus'], b.get('apdus'))} "
                        f"| {_vs(c['at_commands'], b.get('at_commands'))} | {_vs(c['bytes_to_modem'], b.get('bytes_to_modem'))} "
                        f"| {_vs(c['bytes_from_modem'], b.get('bytes_from_modem'))} | {_vs(crit['model_ms'], b.get('model_ms'))} "
                        "| | |" + " |" * (len(picos) + bool(picos)))
    setup = results.get("setup")
    if setup:
        c, b = setup["counts"], setup["bound"]
        rows.append(f"| + first SIM call after boot | {_vs(c['apdus'], b['apdus'])} | {_vs(c['at_commands'], b['at_commands'])} "
                    f"| {_vs(c['bytes_to_modem'], b['bytes_to_modem'])} | {_vs(c['bytes_from_modem'], b['bytes_from_modem'])} "
                    f"| {_vs(round(c['model_ms'], 1), b['model_ms'])} | | |" + " |" * (len(picos) + bool(picos)))
    return "\n".join(rows)


def pico_images(results):
    """The Pico images with figures, in run order."""
    return [v for v, r in (results.get("pico") or {}).items() if isinstance(r, dict) and r.get("status") == "ok"]


def goal(key):
    from .pico import GOALS_KB

    return f"≤ {GOALS_KB[key]}K" if key in GOALS_KB else ""


def pico_heap(res):
    """A Pico heap cell: the minimum in KB, `> hi` when even the whole heap failed, or why there is none."""
    if not res:
        return "not run"
    if res.get("status") == "not available":
        return "not available"
    heap = res.get("heap")
    if not heap:
        return res.get("error", "not searched")
    return _min_kb(heap)


def _kb(n):
    return "" if n is None else f"{n / 1024:.1f}"


def pico_table(version, run):
    """Per operation on one Pico image: the heap figures at its minimum and, when measured, the board's time."""
    rows = [f"**MicroPython {version}** ({run['image']}): {run['boot_free']} bytes free at the end of a boot.py that "
            "allocates nothing, the most a ballast leaves.", "",
            "| operation | heap min | KB free when ready | KB free after 2 calls | TLS peak KB | guest ms "
            "| UART ms | board CPU ms | card ms (modeled) |",
            "|---|---|---|---|---|---|---|---|---|"]
    for op in run["operations"].values():
        h = op.get("heap") or {}
        rows.append(f"| {op['label']} | {pico_heap(op)} | {_kb(h.get('free_ready'))} | {_kb(h.get('free_after'))} "
                    f"| {_kb(h.get('peak_bytes'))} | {_times(op.get('time'))}")
        if op.get("time_verify_sim"):
            rows.append(f"| {op['label']}, `--verify sim` | | | | | {_times(op['time_verify_sim'])}")
    return "\n".join(rows)


def _times(t):
    t = t or {}
    if "error" in t:
        return f"{t['error'][:80]} ||||"
    return " | ".join(str(t.get(f, "")) for f in ("guest_ms", "uart_ms", "board_ms", "card_ms")) + " |"


def pico_section(pico):
    if "skipped" in pico:
        return [f"Emulated Pico skipped: {pico['skipped']}"]
    parts = []
    for version, run in pico.items():
        if run.get("status") != "ok":
            parts += [f"MicroPython {version}: {run.get('status')}: {run.get('reason') or run.get('error', '')}", ""]
            continue
        parts += [pico_table(version, run), ""]
    parts.append("Heap min on the Pico: the smallest free heap (KB, `gc.mem_free()` after `gc.collect()`) a "
                 "benchmark `boot.py` ballast leaves the firmware, at which the firmware loads and runs the "
                 "operation twice, by bisection; code included. Board CPU = guest time (`time.ticks_us`, raw REPL, "
                 "`jsonrpc.handle`) − the UART time the modem trace models; the simulated card answers at once, so "
                 "on hardware add the card ms.")
    return parts


def scale_table(scale):
    rows = ["| boards | readings verified / s | latency median ms | latency p95 ms | verified | failed |",
            "|---|---|---|---|---|---|"]
    for r in scale["runs"]:
        bad = r["failed"] + len(r["errors"])
        rows.append(f"| {r['boards']} | {r['per_second']} | {r['latency_ms']['median']} | {r['latency_ms']['p95']} "
                    f"| {r['verified']} | {bad} |")
    broker = scale.get("broker")
    if broker:
        rows += ["", "Through the broker into the database (`mqtt.publish` on each board → Mosquitto → one ingest "
                 "worker → SQLite); latency from the `mqtt.publish` request to the row's commit:", "",
                 "| boards | readings stored / s | latency median ms | latency p95 ms | stored | verified | lost | errors |",
                 "|---|---|---|---|---|---|---|---|"]
        for r in broker["runs"]:
            rows.append(f"| {r['boards']} | {r['per_second']} | {r['latency_ms']['median']} | {r['latency_ms']['p95']} "
                        f"| {r['stored']} | {r['verified']} | {r['lost']} | {'; '.join(r['errors']) or 0} |")
    return "\n".join(rows)


def ingest_section(ing):
    r, us = ing["per_second"], ing["stage_us"]
    goal = f"{ing['goal_ratio']:.2f}× OpenSSL" if r["openssl"] else "OpenSSL not found"
    rows = ["| on one core | per second | vs `openssl speed ecdsap256` verify/s |", "|---|---|---|"]
    for key, label in (("openssl", "OpenSSL P-256 verify (anchor)"), ("cryptography", "cryptography ECDSA verify"),
                       ("verifier", "**ingest: `readings.Verifier`**"), ("reference", "reference: `readings.check`"),
                       ("stored", "ingest: verified and stored in SQLite")):
        ratio = f"{r[key] / r['openssl']:.2f}×" if r["openssl"] else ""
        rows.append(f"| {label} | {r[key]} | {ratio} |")
    same = ing["same_verdicts"]
    agree = (f"the two paths gave the same verdict on all {same['readings']} readings "
             f"({', '.join(f'{n} {code}' for code, n in same['verdicts'].items())})" if same["agree"]
             else f"**the two paths disagree**: {same['first_disagreement']}")
    return "\n".join(rows + ["", f"Goal: ≥ {goal}; this run: **{ing['ratio']}×**. Same verdicts: {agree}.", "",
                             "Where a reading's time goes (µs, each stage alone): "
                             + "; ".join(f"{k} {v}" for k, v in us.items()) + "."])


def enrolment_section(enr):
    runs = (("hsm", "CA key in SoftHSM2 (PKCS#11)"), ("software", "CA key in software (comparison)"))
    rows = [f"{enr['devices']} devices enrol one after the other (`simpleenroll`, TLS 1.3 with the bootstrap "
            "certificate, each issued certificate checked).", "",
            "| CA key | enrolments/s | enrolled | seconds |", "|---|---|---|---|"]
    for key, label in runs:
        r = enr[key]
        rows.append(f"| {label} | error: {r['error']} | | |" if "error" in r else
                    f"| {label} | {r['per_second']} | {r['enrolled']} | {r['seconds']} |")
    if enr["ratio"] is not None:
        rows += ["", f"HSM vs software: **{enr['ratio']}×**."]
    for key, label in runs:
        if "stage_us" in enr[key]:
            rows += ["", f"Where an enrolment's time goes, {label} (µs, each stage alone): "
                     + "; ".join(f"{k} {v}" for k, v in enr[key]["stage_us"].items()) + "."]
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
    if results.get("pico"):
        parts += ["", "## Emulated Raspberry Pi Pico (pico_waveshare_sim7080g)", ""] + pico_section(results["pico"])
    if results.get("ingest"):
        parts += ["", "## Ingest: verification rate", "", ingest_section(results["ingest"])]
    if results.get("enrolment"):
        parts += ["", "## Enrolment server (EST)", "", enrolment_section(results["enrolment"])]
    if results.get("scale"):
        parts += ["", "## Many boards", "", scale_table(results["scale"])]
    if results.get("regressions"):
        parts += ["", "## Regressions against tools/benchmarks/baseline.json", ""]
        parts += [f"- {line}" for line in results["regressions"]]
    return "\n".join(parts) + "\n"
