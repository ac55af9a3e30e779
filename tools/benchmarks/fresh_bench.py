"""Fresh simulated benches for the benchmarks: up, firmware on, always down again.

Benches are attached (`SimulatedBench(attached=True)`): their processes also end when this process dies,
however it dies, so an interrupted benchmark leaves nothing running. A state folder whose recorded
processes are all gone (an earlier run was killed) is taken over; one with live processes is not.
"""

import contextlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from safebench import deploy
from safebench.errors import BenchError
from safebench.simulated_bench import SimulatedBench


def claim(state_dir):
    """The attached bench of `state_dir`, taken over from a run that died, its traces emptied."""
    bench = SimulatedBench(Path(state_dir), attached=True)
    status = bench.status()
    if any(b["alive"] for b in status["boards"]):
        raise BenchError(f"a bench is running in {bench.dir}: another benchmark? stop it with "
                         f"`safebench bench down --state {bench.dir}`")
    bench.state_path.unlink(missing_ok=True)  # all dead: nothing to stop, no pid to signal
    for old in bench.dir.glob("sim*/trace.jsonl"):  # each bench's trace starts empty
        old.unlink()
    return bench


@contextlib.contextmanager
def fresh_bench(state_dir, heap, boards=1, card=None, staged=None, parallel=4):
    """A bench of `boards` boards with `heap`, the firmware copied from `staged` (a deploy.build folder).

    Yields the Bench; every board of it runs the firmware. Down on exit, also on Ctrl-C."""
    bench = claim(state_dir)
    try:
        bench.up(heap=heap, boards=boards, card=card)
        ports = [b["port"] for b in bench.status()["boards"]]
        with ThreadPoolExecutor(min(parallel, len(ports))) as pool:  # mpremote children, not bench parts
            list(pool.map(lambda port: deploy.copy(port, staged), ports))
        yield bench
    finally:
        bench.down()


def build(out_dir, board_type="unix_sim"):
    """Compile the firmware once for every bench of a run."""
    deploy.build(board_type, out_dir)
    return Path(out_dir)
