"""The firmware installs with `mpremote mip install` (firmware/package.json, firmware/FEATURE/package.json),
from a checkout or from a web server, onto a board with nothing on it; with main.py and its board definition
beside it, the board then serves the protocol."""

import functools
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from safebench.deploy import feature_modules
from safebench.device import Device
from safebench.errors import RpcError
from safebench.rpc_codes import METHOD_NOT_FOUND
from safebench.simulated_bench import SimulatedBench

REPO = Path(__file__).resolve().parents[3]
MPREMOTE = str(Path(sys.executable).with_name("mpremote"))
NO_PROXY_ENV = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}  # 127.0.0.1 is fetched directly


@pytest.fixture
def empty_board(tmp_path, no_leftovers):
    """A simulated board whose flash holds nothing yet."""
    bench = SimulatedBench(tmp_path / "bench", attached=True)
    board = bench.up()["boards"][0]
    try:
        yield board
    finally:
        bench.down()


@pytest.fixture
def web_server():
    """The checkout served on 127.0.0.1 (http.server: what any static web server does); yields its URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=REPO))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _mpremote(port, *args):
    res = subprocess.run([MPREMOTE, "connect", port, *args], capture_output=True, text=True, timeout=90,
                         cwd=REPO, env=NO_PROXY_ENV)
    assert res.returncode == 0, res.stdout[-1500:] + res.stderr[-1500:]
    return res.stdout


def _add_main_and_board_definition(port):
    """As the README says, with the simulated board's definition."""
    _mpremote(port, "cp", "firmware/main.py", ":main.py", "+", "cp", "boards/unix_sim.py", ":board.py",
              "+", "cp", "boards/board_common.py", ":lib/")


def _installed(board):
    return sorted(p.name for p in (Path(board["flash"]) / "lib").iterdir())


@pytest.mark.timeout(120)
def test_mip_installs_the_firmware_from_a_checkout(empty_board):
    out = _mpremote(empty_board["port"], "mip", "install", "firmware/package.json")
    assert "Done" in out and "Installing: /lib/service.py" in out
    assert _installed(empty_board) == sorted(feature_modules())  # every feature's modules, into /lib
    _add_main_and_board_definition(empty_board["port"])
    with Device(empty_board["port"], timeout=20) as dev:
        assert dev.connect(reboot=True)["firmware"]
        assert dev.call("sim.info")["objects"]  # the SIM answers through the installed modules


@pytest.mark.timeout(120)
def test_mip_installs_a_feature_from_a_web_server(empty_board, web_server):
    """firmware/readings/package.json names core's modules as ../core/...: a web server resolves them."""
    _mpremote(empty_board["port"], "mip", "install", f"{web_server}/firmware/readings/package.json")
    assert _installed(empty_board) == sorted(feature_modules(["readings"]))  # core and readings, no tls
    _add_main_and_board_definition(empty_board["port"])
    with Device(empty_board["port"], timeout=20) as dev:
        dev.connect(reboot=True)
        assert dev.call("reading")["cose"]
        with pytest.raises(RpcError) as e:
            dev.call("tls.echo", host="127.0.0.1", port=4433)
        assert e.value.code == METHOD_NOT_FOUND and e.value.data == {"feature": "tls"}
