"""The signed-reading path fits the 64 KB heap of a small 32-bit board (`bench up --heap 64K`)."""

import pytest

from safebench import deploy
from safebench.bench import Bench
from safebench.device import Device


@pytest.mark.timeout(120)
def test_reading_and_signature_in_64k(simulated, tmp_path):
    bench = Bench(tmp_path / "bench64", attached=True)
    bench.up(heap="64K")
    try:
        board = bench.board()
        deploy.deploy(board["port"], board["type"], tmp_path / "build")
        with Device(board["port"]) as dev:
            dev.connect()
            assert dev.call("sim.sign", message="00")["signature"]
            reading = dev.call("reading")
            assert reading["seq"] == 1 and reading["cose"]
            assert dev.call("info")["mem_free"] > 0
    finally:
        bench.down()


@pytest.mark.timeout(120)
def test_out_of_memory_is_an_answer_not_a_crash(simulated, tmp_path):
    """Below what a request needs, the board answers "out of memory" and goes on serving."""
    from safebench.device import RpcError

    bench = Bench(tmp_path / "bench44", attached=True)
    bench.up(heap="44K")
    try:
        board = bench.board()
        deploy.deploy(board["port"], board["type"], tmp_path / "build")
        with Device(board["port"]) as dev:
            dev.connect()
            for _ in range(3):
                try:
                    dev.call("sim.info")
                except RpcError as e:
                    assert e.code == -32603 and "memory" in str(e)
                assert dev.call("info")["firmware"]  # still serving, not dropped to the REPL
    finally:
        bench.down()
