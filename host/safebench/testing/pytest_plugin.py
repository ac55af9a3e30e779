"""pytest plugin for the HIL suite: the same tests on a simulated bench (default) or on a real board.

Fixtures: `simulated_bench` (the simulated bench, or None on real hardware), `board` (port and board type, with
the firmware deployed once per session), `device` (a connected JSON-RPC link), `ca_cert` (the CA
the SIM's certificate must chain to), `fault` (the simulated modem's fault control), `own_board` (a
simulated board of a test's own, for other heaps, dialects and SIMs). The serial log
and the AT/APDU trace of a failing test are attached to its report. `--sim-boards N` spreads the
tests over N simulated boards: each pytest-xdist worker brings up its own.
"""

from pathlib import Path

import pytest

# The rig is imported by the fixtures that use it: as an entry point this plugin is loaded into every
# pytest run of the environment, and a suite that asks nothing of it should not pay for it.


def pytest_addoption(parser):
    group = parser.getgroup("safebench HIL")
    group.addoption("--port", help="run on the real board at this serial port instead of a simulated one")
    group.addoption("--board", help="run on this board of the bench file (its alias)")
    group.addoption("--bench-file", "--bench", dest="bench_file", help="bench file (YAML) of real boards; with -n N, each xdist worker takes one board")
    group.addoption("--board-type", help="board definition (boards/*.py) of the --port board")
    group.addoption("--ca", help="CA certificate (PEM) that issued the real SIM's certificate")
    group.addoption("--heap", default="256K", help="heap of the simulated board (default 256K)")
    group.addoption("--sim-boards", type=int, default=0, metavar="N",
                    help="run on N simulated boards in parallel (pytest-xdist: one board per worker)")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    n = config.getoption("--sim-boards")
    if n and not hasattr(config, "workerinput"):  # set xdist's own options, whichever hook runs first
        config.option.numprocesses = n
        config.option.dist = "load"
        config.option.tx = ["popen"] * n


def pytest_configure(config):
    config.addinivalue_line("markers", "simulated_only: needs the simulated bench (its files or faults)")


def _real_board(config):
    """(port, board type, CA path) of the real board this session (or xdist worker) runs on, or None."""
    from safebench import bench_file

    alias, bench_path, port = (config.getoption(o) for o in ("--board", "--bench-file", "--port"))
    if alias:
        entry, port = bench_file.lookup(alias, bench_path)
        return port, entry.type, config.getoption("--ca") or entry.ca
    if bench_path:
        entries = [e for _, e in sorted(bench_file.load(bench_path).items())]
        worker = getattr(config, "workerinput", {}).get("workerid", "gw0")
        entry = entries[int(worker[2:]) % len(entries)]
        return bench_file.find_port(entry), entry.type, config.getoption("--ca") or entry.ca
    if port:
        if not config.getoption("--board-type"):
            pytest.exit("--port needs --board-type", returncode=4)
        return port, config.getoption("--board-type"), config.getoption("--ca")
    return None


@pytest.fixture(scope="session")
def real_board(request):
    return _real_board(request.config)


@pytest.fixture(scope="session")
def simulated_bench(request, real_board, tmp_path_factory):
    from safebench.simulated_bench import SimulatedBench

    if real_board:
        yield None
        return
    b = SimulatedBench(tmp_path_factory.mktemp("bench"), attached=True)
    b.up(heap=request.config.getoption("--heap"))
    try:
        yield b
    finally:
        b.down()


@pytest.fixture(scope="session")
def board(simulated_bench, real_board, tmp_path_factory):
    from safebench import deploy
    from safebench.provision import bench_board_roles

    if real_board:
        port, board_type, _ = real_board
    else:
        b = simulated_bench.board()
        port, board_type = b["port"], b["type"]
    roles = bench_board_roles(simulated_bench.board()) if simulated_bench else None
    deploy.deploy(port, board_type, tmp_path_factory.mktemp("build"), roles)
    return {"port": port, "type": board_type}


@pytest.fixture(scope="session")
def ca_cert(simulated_bench, real_board):
    from cryptography import x509

    from safebench.pki import CA_CERT

    path = real_board[2] if real_board else simulated_bench.dir / "ca" / CA_CERT
    if not path:
        pytest.skip("give --ca (or sim: ca: in the bench file) for a real board's SIM")
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


@pytest.fixture
def device(request, board):
    from safebench.device import Device

    dev = Device(board["port"])
    request.node._safebench_device = dev
    try:
        dev.connect()
        yield dev
    finally:
        dev.close()


@pytest.fixture
def simulated(simulated_bench):
    if simulated_bench is None:
        pytest.skip("needs the simulated bench")
    return simulated_bench


@pytest.fixture
def own_board(simulated, tmp_path):
    """start(heap=, dialect=, card=, state=) -> (bench, board, device): a simulated board of the test's own
    (a heap, modem dialect or SIM the session's board does not have), deployed and connected; stopped after."""
    from safebench import deploy
    from safebench.device import Device
    from safebench.provision import bench_board_roles
    from safebench.simulated_bench import SimulatedBench

    started = []

    def start(heap="256K", dialect="generic", card=None, state=None):
        bench = SimulatedBench(state or tmp_path / f"own{len(started)}", attached=True)
        started.append(bench)
        bench.up(heap=heap, dialect=dialect, card=card)
        board = bench.board()
        deploy.deploy(board["port"], board["type"], bench.dir / "build", bench_board_roles(board))
        dev = Device(board["port"])
        started.append(dev)
        dev.connect()
        return bench, board, dev

    try:
        yield start
    finally:
        for part in reversed(started):  # devices first, then their benches
            if isinstance(part, Device):
                part.close()
            else:
                part.down()


@pytest.fixture
def fault(simulated):
    """The simulated modem's fault control (safebench_simulator.faults.FaultControl); faults cleared afterwards."""
    from safebench_simulator.faults import FaultControl

    path = simulated.board().get("modem_control")
    if not path:
        pytest.skip("this bench's modem has no fault control")
    with FaultControl(path) as control:
        try:
            yield control
        finally:
            control.clear()
            if control.status()["sim"] == "removed":
                control.sim_insert()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    """Remember where the modem trace stood, so a failing test's AT lines and APDUs can be attached.
    Only tests that use the simulated bench are touched: other projects' tests never see this plugin."""
    result = yield
    bench = getattr(item, "funcargs", {}).get("simulated_bench")
    trace = bench.board().get("trace") if bench else None
    if trace:
        item._safebench_trace = (trace, Path(trace).stat().st_size if Path(trace).exists() else 0)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if not report.failed:
        return report
    dev = getattr(item, "_safebench_device", None)
    if dev is not None:
        report.sections.append(("board serial log", b"\n".join(dev.log).decode(errors="replace")))
    trace, start = getattr(item, "_safebench_trace", (None, 0))
    if trace and Path(trace).exists():
        with open(trace, "rb") as f:
            f.seek(start)
            lines = f.read().decode(errors="replace").splitlines()
        report.sections.append(("AT/APDU trace", "\n".join(lines[-300:])))
    return report
