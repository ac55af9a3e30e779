"""The benchmarks on an emulated Raspberry Pi Pico (pico_waveshare_sim7080g) running official MicroPython images.

Heap, by ballast: the firmware is deployed once per image; for each probe a `boot.py` of the benchmark (not of
the firmware) is written with mpremote. It allocates bytearrays at boot until `gc.mem_free()` after
`gc.collect()` is exactly N KB, and prints that figure; the board is soft-reset (boot.py, then the firmware's
main.py, with N KB to load its modules and run in), and the operation runs twice with its answer checked, as
`heap.HeapSearch` does on the unix port. N is bisected with `heap.smallest_passing`, at 1 KB steps by default.
Every figure is the guest's own `gc.mem_free()`, so it repeats exactly from run to run.

Board time: the operation runs in the raw REPL through the firmware's own `jsonrpc.handle`, timed with
`time.ticks_us()` on the guest's clock. The simulated modem answers at once (no card latency elapses), and
the UART's bytes cross at its baud rate in emulated time, so board CPU = guest time - the trace's UART time.
"""

import contextlib
import json
import statistics
from pathlib import Path

from safebench import deploy
from safebench.device import Device
from safebench.errors import BenchError, BoardError, DeviceError, RpcError
from safebench.simulated_bench import emulated_images
from safebench.usb_boards import mpremote

from . import heap
from .fresh_bench import claim
from .measure import Setup, mem_free
from .operations import Context, NotAvailable

BOARD_TYPE = "pico_waveshare_sim7080g"
IMAGES = ("v1.28.0", "v1.22.0")  # official MicroPython releases for the Pico, in the images folder
BALLAST_MARK = "ballast free"
GUEST_MARK = "guest-timed "
BOOT_TIMEOUT = 20.0  # s: a firmware that cannot load in the ballast's room never says ready
CALL_TIMEOUT = 240.0  # s: a TLS handshake on the emulated Pico (0.16x a real one) takes about a minute
BLOCK = 16  # bytes: the GC's allocation unit on a 32-bit port
MEASURE_KB = 1 << 19  # a ballast target no board reaches (and still a small int on the board)
APPROACH = 256  # bytes: how far short of the target the first, big bytearray stops
SPARE = 256  # bytes: a ballast's code may take a block or two more than the measuring one's
GOALS_KB = {"reading": 64, "tls_handshake": 96}  # issue #12's budgets, code included


class BallastError(BenchError):
    """The ballast did not leave the free heap it was written for."""


def harness_missing():
    from safebench_simulator.rp2040.pico import harness_missing as missing

    return missing()


def ballast_boot_py(free_kb):
    """boot.py leaving exactly `free_kb` KB free (after gc.collect) once it has run. A bytearray of n bytes,
    n a multiple of the block, takes n + one block (its object); a list made first holds them, so keeping
    one allocates nothing more. The big one stops APPROACH bytes short (on v1.22.0 it takes a block more
    than that), small ones close the gap, a last block is filled by an empty bytearray. With
    MEASURE_KB, more than any board has, it allocates nothing and says how much a ballast can leave."""
    return (f"# benchmark ballast, tools/benchmarks/pico.py: {free_kb} KB free for the firmware\n"
            "import gc\n"
            "_keep = [None] * 8\n"
            "_i = _extra = _n = 0\n"  # every global made before measuring: a growing dict would allocate
            "gc.collect()\n"
            "for _i in range(8):\n"
            f"    _extra = gc.mem_free() - {free_kb * 1024}\n"
            f"    if _extra < {BLOCK}:\n"
            "        break\n"
            f"    _n = _extra - {BLOCK} - ({APPROACH} if _extra > 2 * {APPROACH} else 0)\n"
            "    _keep[_i] = bytearray(_n) if _n > 0 else bytearray(0)\n"
            "    gc.collect()\n"
            f"print('{BALLAST_MARK}', gc.mem_free())\n")


def ballast_free(lines):
    """The free heap the last ballast line among the board's printed `lines` (bytes) reports, None if none."""
    found = None
    for line in lines:
        text = line.decode(errors="replace").strip() if isinstance(line, bytes) else line.strip()
        if text.startswith(BALLAST_MARK):
            try:
                found = int(text[len(BALLAST_MARK):])
            except ValueError:
                continue
    return found


def search_range(boot_free, lo, step):
    """(lo, hi, step) for smallest_passing: hi the largest lo + k*step KB within the free heap at boot (less
    SPARE: a longer target in boot.py's code)."""
    top = (boot_free - SPARE) // 1024
    if top < lo:
        raise BallastError(f"the board boots with {boot_free} bytes free, less than the {lo} KB to start from")
    return lo, lo + (top - lo) // step * step, step


def board_ms(guest_ms, uart_ms):
    """The board's own time: the guest's clock minus the UART time in it (the card answered at once)."""
    return round(guest_ms - uart_ms, 1)


@contextlib.contextmanager
def pico_bench(state_dir, image, build_dir, log):
    """An emulated Pico running `image` (a UF2 file) with the firmware deployed (once: the flash persists in
    `state_dir`, so a later run copies only what changed) and no ballast. Down on exit."""
    bench = claim(state_dir)
    try:
        bench.up(board_type=BOARD_TYPE, firmware=str(image))
        port = bench.board()["port"]
        write_ballast(port, None)
        log(f"    deploying onto the emulated Pico ({Path(image).name})")
        deploy.deploy(port, BOARD_TYPE, build_dir)
        yield bench
    finally:
        bench.down()


def write_ballast(port, free_kb):
    """boot.py with the ballast for `free_kb` KB, or none (None). mpremote's soft reset runs the old boot.py
    but not main.py, so the room it leaves is the firmware's room: enough to write a small file."""
    if free_kb is None:
        script = "import os\ntry:\n os.remove('boot.py')\nexcept OSError:\n pass\n"
    else:
        script = f"f = open('boot.py', 'w')\nf.write({ballast_boot_py(free_kb)!r})\nf.close()\n"
    try:
        mpremote(port, "exec", script, timeout=60)
    except BoardError as e:
        raise BenchError(f"cannot write the ballast onto {port}: {e}") from None


class BallastSearch(heap.HeapSearch):
    """heap.HeapSearch on one emulated Pico: a probe is a ballast, not a fresh bench."""

    def __init__(self, port, ctx_fields, log=None):
        super().__init__(None, None, None, ctx_fields, timeout=BOOT_TIMEOUT, log=log)
        self.port = port
        self.frees = {}  # kb -> [free when the firmware is ready, free after the two calls, TLS's sampled peak]

    def _probe(self, op, heap_kb):
        write_ballast(self.port, heap_kb)
        with Device(self.port, timeout=self.timeout) as dev:
            ready_free = dev.connect(reboot=True)["mem_free"]
            left = ballast_free(dev.log)
            if left != heap_kb * 1024:
                raise BallastError(f"the ballast left {left} bytes free, not {heap_kb * 1024}")
            ctx = Context(dev, tls_timeout=CALL_TIMEOUT, **self.ctx_fields)
            peaks = []
            with op.session(ctx, heap.PROBE_CALLS):
                for _ in range(heap.PROBE_CALLS):
                    res = op.request(ctx)
                    op.check(ctx, res)
                    peaks.append(res.get("heap_used_max") if isinstance(res, dict) else None)
            self.frees[heap_kb] = [ready_free, mem_free(dev), max((p for p in peaks if p), default=None)]
        self.log(f"    {op.key} at {heap_kb}K: ok")
        return True

    def search(self, op, lo=16, hi=256, step=1):
        self.frees = {}
        res = super().search(op, lo, hi, step)
        if res["min_kb"] is not None:  # at the minimum: what the firmware took at boot, what the op left in use
            res["free_ready"], res["free_after"], res["peak_bytes"] = self.frees[res["min_kb"]]
        return res


class _GuestTimed:
    """A Device-like caller that runs each request in the raw REPL through the firmware's jsonrpc.handle,
    timed on the guest's clock. The interpreter is not reset between calls (mpremote `resume`), so the
    SIM channel and caches live on as in the firmware's own loop."""

    def __init__(self, port):
        self.port, self.guest_us, self._ids, self._fresh = port, [], 0, True

    def call(self, method, timeout=None, **params):
        self._ids += 1
        line = json.dumps({"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params}).encode()
        script = ("import json, time, jsonrpc, service\n"
                  f"_t = time.ticks_us()\n_r = jsonrpc.handle({line!r}, service.find)\n"
                  "_us = time.ticks_diff(time.ticks_us(), _t)\n"
                  f"print({GUEST_MARK!r} + json.dumps({{'us': _us, 'reply': _r}}))\n")
        argv = ("exec", script) if self._fresh else ("resume", "exec", script)
        self._fresh = False
        try:
            out = mpremote(self.port, *argv, timeout=timeout or CALL_TIMEOUT)
        except BoardError as e:
            raise DeviceError(f"guest-timed {method}: {e}") from None
        doc = guest_reply(out)
        self.guest_us.append(doc["us"])
        reply = doc["reply"]
        if "error" in reply:
            err = reply["error"]
            raise RpcError(method, err)
        return reply["result"]


def guest_reply(output):
    """{"us", "reply"} from the output of a guest-timed call; DeviceError when it printed none."""
    for line in output.splitlines():
        if line.startswith(GUEST_MARK):
            return json.loads(line[len(GUEST_MARK):])
    raise DeviceError(f"a guest-timed call printed no result: {output.strip()[-200:] or 'no output'}")


def board_time(op, port, ctx_fields, reader, runs, tls_verify="firmware"):
    """Guest time, UART and card time of `op` (median of `runs` after one cold call), and board CPU.
    `tls_verify`: who checks the TLS server's CertificateVerify, the board's P-256 or the SIM ("sim")."""
    guest = _GuestTimed(port)
    ctx = Context(guest, tls_timeout=CALL_TIMEOUT, tls_verify=tls_verify, **ctx_fields)
    counts = []
    with op.session(ctx, 1 + runs):
        op.check(ctx, op.request(ctx))
        reader.skip()
        guest.guest_us.clear()
        for _ in range(runs):
            op.check(ctx, op.request(ctx))
            counts.append(reader.take())
    guest_ms = statistics.median(guest.guest_us) / 1000
    uart_ms = statistics.median(c.model_ms - c.card_ms for c in counts)
    card_ms = statistics.median(c.card_ms for c in counts)
    return {"guest_ms": round(guest_ms, 1), "uart_ms": round(uart_ms, 1), "card_ms": round(card_ms, 1),
            "board_ms": board_ms(guest_ms, uart_ms), "runs": runs}


def measure_image(version, ops, state, build_dir, lo, step, timing_runs, log):
    """Heap minima (and, with timing_runs, board time) of `ops` on an emulated Pico running `version`."""
    try:
        image = emulated_images(version)[0]
    except BenchError as e:  # that release's image is not in the images folder
        return {"status": "skipped", "reason": str(e)}
    out = {"status": "ok", "image": image.name, "operations": {}}
    with pico_bench(state / f"pico-{version}", image, build_dir / version, log) as bench:
        port = bench.board()["port"]
        with Device(port, timeout=BOOT_TIMEOUT) as dev:
            setup = Setup(bench, dev, state / f"pico-{version}-work")
            out["micropython"] = setup.info.get("micropython")
        out["boot_free"] = boot_free(port)
        lo, hi, step = search_range(out["boot_free"], lo, step)
        search = BallastSearch(port, setup.ctx_fields, log=log)
        for op in ops:
            log(f"  Pico {version} heap: {op.label}")
            res = out["operations"][op.key] = {"label": op.label}
            try:
                res["heap"] = search.search(op, lo, hi, step)
            except NotAvailable as e:
                res.update(status="not available", reason=str(e))
                continue
            res["status"] = "ok" if res["heap"]["min_kb"] is not None else "error"
        if timing_runs:
            write_ballast(port, None)
            for op in ops:
                res = out["operations"][op.key]
                if res.get("status") != "ok":
                    continue
                log(f"  Pico {version} board time: {op.label}")
                res["time"] = _timed(op, port, setup, timing_runs)
                if op.key == "tls_handshake":  # does the board's own P-256 check of the server dominate?
                    res["time_verify_sim"] = _timed(op, port, setup, timing_runs, "sim")
    return out


def _timed(op, port, setup, runs, tls_verify="firmware"):
    try:
        return board_time(op, port, setup.ctx_fields, setup.reader, runs, tls_verify)
    except heap.FAILURES as e:
        return {"error": f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"}


def boot_free(port):
    """The free heap at the end of a ballast boot.py that allocates nothing: the most a ballast can leave."""
    write_ballast(port, MEASURE_KB)
    with Device(port, timeout=BOOT_TIMEOUT) as dev:
        dev.connect(reboot=True)
        free = ballast_free(dev.log)
    write_ballast(port, None)
    if free is None:
        raise BallastError(f"the board on {port} did not print its free heap at boot")
    return free
