"""Small 32-bit boards: the signed-reading path fits 64 KB (`bench up --heap 64K`), and below what a
request needs the board answers "out of memory" instead of falling over."""

import pytest

from safebench.errors import RpcError
from safebench.rpc_codes import INTERNAL_ERROR


@pytest.mark.timeout(120)
def test_reading_and_signature_in_64k(own_board):
    _, _, dev = own_board(heap="64K")
    assert dev.call("sim.sign", message="00")["signature"]
    reading = dev.call("reading")
    assert reading["seq"] == 1 and reading["cose"]
    assert dev.call("info")["mem_free"] > 0


@pytest.mark.timeout(120)
def test_out_of_memory_is_an_answer_not_a_crash(own_board):
    _, _, dev = own_board(heap="44K")
    for _ in range(3):
        try:
            dev.call("sim.info")
        except RpcError as e:
            assert e.code == INTERNAL_ERROR and "memory" in str(e)
        assert dev.call("info")["firmware"]  # still serving, not dropped to the REPL
