"""Small 32-bit boards: the signed-reading path fits 64 KB (`bench up --heap 64K`), and below what a
request needs the board answers "out of memory" instead of falling over, and gives the heap back."""

import pytest
from cryptography.hazmat.primitives import serialization

from safebench import tls
from safebench.errors import RpcError
from safebench.pki import CA_CERT, CA_KEY, CertificateAuthority
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


@pytest.mark.timeout(180)
def test_failed_handshake_gives_the_heap_back(own_board):
    """TLS needs more than 64 KB: the handshake runs out of memory, and what it loaded is let go again."""
    bench, _, dev = own_board(heap="64K")
    assert dev.call("sim.info", objects=False)["iccid"]  # the SIM session: what every later request finds
    before = dev.call("info")["mem_free"]
    ca = CertificateAuthority.load(bench.dir / "ca" / CA_CERT, bench.dir / "ca" / CA_KEY)
    files = tls.make_server_files(bench.dir / "tls", ca, ca.cert.public_bytes(serialization.Encoding.PEM))
    after = []
    for _ in range(2):
        with tls.PythonServer(files, suites=("gcm",)) as server:
            with pytest.raises(RpcError) as e:
                tls.board_session(dev, "127.0.0.1", server.port, "localhost", b"hi\n", suites=["gcm"], timeout=60)
        assert e.value.code == INTERNAL_ERROR and "out of memory" in str(e.value)
        after.append(dev.call("info")["mem_free"])
        assert dev.call("sim.info", objects=False)["iccid"]
    # the first attempt keeps only what MicroPython never frees (the modules' interned names) and the
    # tls.echo handler; a second attempt keeps nothing more
    assert before - after[0] < 20 * 1024 and abs(after[0] - after[1]) < 1024, (before, after)
