"""pytest plugin for the HIL suite: the same tests on a simulated bench (default) or on a real board.

Fixtures: `simulated_bench` (the simulated bench, or None on real hardware), `board` (name, port and board
type, with the firmware deployed once per session), `device` (a connected JSON-RPC link), `ca_cert` (the CA
the SIM's certificate must chain to), `fault` (the simulated modem's fault control), `own_board` (a
simulated board of a test's own, for other heaps, dialects and SIMs). `--sim-boards N` spreads the tests
over N simulated boards: each pytest-xdist worker brings up its own. `--emu-boards N` does the same with
emulated Picos running an official MicroPython image (`--emu-firmware UF2`): every board of such a session,
a test's own included, is one; a test that asks for what a Pico cannot be (a heap of its own, another modem)
says so in its skip reason.

The options and the bench file are checked when the session starts: a mistake in them is one usage error,
not one error per test; so is a board that cannot be brought up or deployed to. Each test's board is a
property of its JUnit record (`board`), and a failing test's serial log and AT/APDU trace are attached to
its report: as sections on the terminal, as properties (`serial_log`, `trace`) with `--junitxml`.
"""

import os
import shutil
import sys
from pathlib import Path

import pytest

# The rig is imported by the fixtures that use it: as an entry point this plugin is loaded into every
# pytest run of the environment, and a suite that asks nothing of it should not pay for it.

TRACE_LINES = 300  # the trace's last lines a failing test's report carries
_REAL_BOARD = pytest.StashKey()  # the config's: the real board this session runs on, or None
_WATCHED = pytest.StashKey()  # an item's: the boards whose log and trace its report carries if it fails
_ATTACHED = pytest.StashKey()  # an item's: True once a failing report carries them
_SESSION_BOARD = pytest.StashKey()  # the config's: what the `board` fixture returned
_LAB_PLACE = pytest.StashKey()  # the config's: (lab.Client, place) of the lab place it holds


def pytest_addoption(parser):
    group = parser.getgroup("safebench HIL")
    group.addoption("--port", help="run on the real board at this serial port instead of a simulated one")
    group.addoption("--board", help="run on this board of the bench file (its alias)")
    group.addoption("--bench-file", "--bench", dest="bench_file", help="bench file (YAML) of real boards; with -n N, each xdist worker takes one board")
    group.addoption("--board-type", help="board definition (boards/*.py) of the --port board")
    group.addoption("--ca", help="CA certificate (PEM) that issued the real SIM's certificate")
    group.addoption("--heap", help="heap of the simulated board (default 256K)")
    group.addoption("--sim-boards", type=int, default=0, metavar="N",
                    help="run on N simulated boards in parallel (pytest-xdist: one board per worker)")
    group.addoption("--emu-boards", type=int, default=0, metavar="N",
                    help="run on N emulated Picos (pico_waveshare_sim7080g) in parallel, like --sim-boards")
    group.addoption("--lg-coordinator", metavar="HOST:PORT",
                    help="run on a board of a labgrid lab (docs/lab.md): its coordinator; with --lg-place or --lg-tags")
    group.addoption("--lg-place", metavar="NAME", help="the lab's place to acquire for the run")
    group.addoption("--lg-tags", metavar="K=V,...",
                    help="a place with these tags, reserved by the coordinator (with -n N: one per worker)")
    group.addoption("--emu-firmware", metavar="UF2",
                    help="with --emu-boards: the MicroPython image the Picos run, a UF2 or a release of the "
                         "images folder (e.g. 1.22.0; default 1.28.0); A,B: the Picos take them in turn")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    sim, emu = config.getoption("--sim-boards"), config.getoption("--emu-boards")
    if sim and emu:
        raise pytest.UsageError("give --sim-boards N or --emu-boards N, not both")
    if config.getoption("--emu-firmware") and not emu:
        raise pytest.UsageError("--emu-firmware is the image of the --emu-boards Picos: give --emu-boards N")
    option, n, kind = ("--emu-boards", emu, "emulated Picos") if emu else ("--sim-boards", sim, "simulated boards")
    if not n:
        return
    if n < 0:
        raise pytest.UsageError(f"{option} {n}: give a number of {kind}, 1 or more")
    if not config.pluginmanager.hasplugin("xdist"):
        raise pytest.UsageError(f"{option} needs pytest-xdist (pip install pytest-xdist)")
    if not hasattr(config, "workerinput"):  # set xdist's own options, whichever hook runs first
        config.option.numprocesses = n
        config.option.dist = "load"
        config.option.tx = ["popen"] * n


def pytest_configure(config):
    config.addinivalue_line("markers", "simulated_only: needs the simulated bench (its files or faults)")
    lab = config.getoption("--lg-coordinator") or config.getoption("--lg-place") or config.getoption("--lg-tags")
    config.stash[_REAL_BOARD] = _lab_board(config) if lab else _checked_options(config)


def pytest_unconfigure(config):
    """A lab place goes back at the end of the run, whatever ended it (a failure, Ctrl-C)."""
    held = config.stash.get(_LAB_PLACE, None)
    if held:
        client, place = held
        for problem in client.give_back(place):
            sys.stderr.write(f"safebench: {problem}\n")


def _lab_board(config):
    """The board of the lab place this session (or xdist worker) holds ({"name": the place, "port": its
    rfc2217:// URL, "type", "ca"}), acquired here and given back in pytest_unconfigure; None in the xdist
    controller (each worker takes a place of its own)."""
    coordinator, place, tags = (config.getoption(o) for o in ("--lg-coordinator", "--lg-place", "--lg-tags"))
    if not coordinator:
        raise pytest.UsageError("--lg-place and --lg-tags are places of a labgrid lab: give --lg-coordinator")
    if bool(place) == bool(tags):
        raise pytest.UsageError("--lg-coordinator: give the place, --lg-place NAME or --lg-tags K=V,...")
    for option in ("--port", "--board", "--bench-file", "--sim-boards", "--emu-boards"):
        if config.getoption(option):
            raise pytest.UsageError(f"{option} and --lg-coordinator both say which board: give one")
    if getattr(config.option, "numprocesses", 0) and not hasattr(config, "workerinput"):
        return None  # the controller runs no test
    pairs = [t.partition("=") for t in tags.split(",")] if tags else []
    if not all(k and eq and v for k, eq, v in pairs):
        raise pytest.UsageError(f"--lg-tags {tags}: give KEY=VALUE,...")
    wanted = {k: v for k, _, v in pairs} or None
    from safebench import lab
    from safebench.errors import SafebenchError, UsageError

    client = lab.Client(coordinator)
    held = None
    try:
        held = client.reserve(wanted) if wanted else place
        client.acquire(held)
        name, shown = client.name_of(held), client.run("show", place=held)
        board_type = config.getoption("--board-type") or _tag(shown, "type")
        if not board_type:
            raise UsageError(f"place {name} has no type tag: give --board-type")
        board = {"name": name, "port": client.serial_url(held), "type": board_type,
                 "ca": _load_ca(config.getoption("--ca"))}
    except SafebenchError as e:
        if held:
            client.give_back(held)  # not kept by a run that does not start
        raise pytest.UsageError(str(e)) from None
    config.stash[_LAB_PLACE] = (client, held)
    return board


def _tag(shown, key):
    """A tag's value in `labgrid-client show`'s text ("  tags: k=v, k2=v2")."""
    for line in shown.splitlines():
        if line.strip().startswith("tags:"):
            for pair in line.split(":", 1)[1].split(","):
                k, _, v = pair.strip().partition("=")
                if k == key:
                    return v
    return None


def _checked_options(config):
    """The real board this session (or xdist worker) runs on ({"name", "port", "type", "ca"}: its CA
    certificate or None), or None for the simulated bench; a mistake in the options or the bench file
    is a pytest.UsageError, one line before any test runs."""
    alias, bench_path, port, board_type, ca, heap, sim_boards, emu_boards = (config.getoption(o) for o in (
        "--board", "--bench-file", "--port", "--board-type", "--ca", "--heap", "--sim-boards", "--emu-boards"))
    if not (alias or bench_path or port):
        for given, option in ((board_type, "--board-type"), (ca, "--ca")):
            if given:
                raise pytest.UsageError(f"{option} describes a real board: give it with --port (or --board)")
        if heap and emu_boards:
            raise pytest.UsageError("--heap is for the unix-port board: an emulated Pico has the heap its image gives it")
        if heap:
            _check_heap(heap)
        if emu_boards:
            for image in _emu_images(config):
                _check_emulation(image)
        return None
    for given, option in ((heap, "--heap"), (sim_boards, "--sim-boards"), (emu_boards, "--emu-boards")):
        if given:
            raise pytest.UsageError(f"{option} is for simulated boards, not the real board of "
                                    f"{'--port' if port else '--board/--bench-file'}")
    if port and (alias or bench_path):
        raise pytest.UsageError("give --port PORT --board-type TYPE, or --board ALIAS of the bench file, not both")
    from safebench.errors import SafebenchError

    try:
        board = _real_board(config, alias, bench_path, port, board_type)
        board["ca"] = _load_ca(ca or board["ca"])
        return board
    except SafebenchError as e:
        raise pytest.UsageError(str(e)) from None


def _check_heap(heap):
    from safebench_simulator.board import heapsize_arg

    try:
        heapsize_arg(heap)
    except ValueError as e:
        raise pytest.UsageError(f"--heap: {e}") from None


def _check_emulation(firmware):
    from safebench.errors import SafebenchError
    from safebench.simulated_bench import emulated_images

    try:
        emulated_images(firmware)
    except SafebenchError as e:
        raise pytest.UsageError(f"--emu-boards: {e}") from None


def _real_board(config, alias, bench_path, port, board_type):
    from safebench import bench_file
    from safebench.board_definitions import board_types
    from safebench.errors import UsageError

    if alias:
        entry, port = bench_file.lookup(alias, bench_path)
        return {"name": alias, "port": port, "type": entry.type, "ca": entry.ca}
    if bench_path:
        entries = [e for _, e in sorted(bench_file.load(bench_path).items())]
        worker = getattr(config, "workerinput", None)
        # each xdist worker takes one board; the controller checks every board a worker will take
        indexes = [int(worker["workerid"][2:])] if worker else range(getattr(config.option, "numprocesses", 0) or 1)
        taken = [entries[i % len(entries)] for i in indexes]
        ports = [bench_file.find_port(e) for e in taken]
        return {"name": taken[0].alias, "port": ports[0], "type": taken[0].type, "ca": taken[0].ca}
    if not board_type:
        raise UsageError(f"--port {port} needs --board-type (one of {', '.join(board_types())})")
    if board_type not in board_types():
        raise UsageError(f"--board-type {board_type}: no such board definition (one of {', '.join(board_types())})")
    if not os.path.exists(port):
        raise UsageError(f"--port {port}: no such port")
    return {"name": None, "port": port, "type": board_type, "ca": None}


def _load_ca(path):
    """The CA certificate at `path` (--ca, or the bench file's sim: ca:); None: none given."""
    if not path:
        return None
    from cryptography import x509

    from safebench.errors import UsageError

    try:
        return x509.load_pem_x509_certificate(Path(path).read_bytes())
    except OSError as e:
        raise UsageError(f"CA certificate {path}: {e.strerror}") from None
    except ValueError:
        raise UsageError(f"CA certificate {path}: not a PEM certificate (-----BEGIN CERTIFICATE-----)") from None


def _or_stop_session(request, what, action):
    """action(), or, when it fails, the first test's one-line error and the session's end (each xdist
    worker stops on its own): a board the session cannot use is one error, not the same one per test."""
    from safebench.errors import SafebenchError

    try:
        return action()
    except SafebenchError as e:
        error = e
    request.session.shouldstop = what
    pytest.fail(f"{what}: {error}", pytrace=False)


EMULATED_TYPE = "pico_waveshare_sim7080g"


def _emu_images(config):
    """The --emu-firmware images, None for the default one."""
    return [image or None for image in (config.getoption("--emu-firmware") or "").split(",")]


def _emulated(config):
    """The SimulatedBench.up() arguments for this session's emulated Picos ({} for unix-port boards): with
    several images, xdist worker i runs image i modulo their number."""
    if not config.getoption("--emu-boards"):
        return {}
    images = _emu_images(config)
    worker = getattr(config, "workerinput", None)
    image = images[int(worker["workerid"][2:]) % len(images)] if worker else images[0]
    return {"board_type": EMULATED_TYPE, "firmware": image}


@pytest.fixture(scope="session")
def real_board(request):
    return request.config.stash[_REAL_BOARD]


@pytest.fixture(scope="session")
def simulated_bench(request, real_board, tmp_path_factory):
    from safebench.simulated_bench import SimulatedBench

    if real_board:
        yield None
        return
    b = SimulatedBench(tmp_path_factory.mktemp("bench"), attached=True)
    _or_stop_session(request, "cannot bring up the simulated bench",
                     lambda: b.up(heap=request.config.getoption("--heap"), **_emulated(request.config)))
    try:
        yield b
    finally:
        b.down()


@pytest.fixture(scope="session")
def board(request, simulated_bench, real_board, tmp_path_factory):
    """{"name" (None for a --port board), "port", "type"} (and "trace", "emulated", "firmware" on the
    simulated bench) of the session's board, deployed."""
    from safebench import deploy

    if real_board:
        board = {k: real_board[k] for k in ("name", "port", "type")}
    else:
        b = simulated_bench.board()
        board = {"name": b["name"], "port": b["port"], "type": b["type"], "trace": b.get("trace"),
                 "emulated": b.get("emulated", False), "firmware": b.get("firmware")}
    # no sim.json: the firmware finds the SIM's roles on the card, on simulated boards as on real ones
    _or_stop_session(request, f"cannot deploy the firmware to {_describe(board)}",
                     lambda: deploy.deploy(board["port"], board["type"], tmp_path_factory.mktemp("build")))
    request.config.stash[_SESSION_BOARD] = board
    return board


@pytest.fixture(scope="session")
def ca_cert(simulated_bench, real_board):
    from cryptography import x509

    from safebench.pki import CA_CERT

    if real_board:
        if real_board["ca"] is None:
            pytest.skip("give --ca (or sim: ca: in the bench file) for a real board's SIM")
        return real_board["ca"]
    return x509.load_pem_x509_certificate((simulated_bench.dir / "ca" / CA_CERT).read_bytes())


@pytest.fixture
def device(request, board):
    from safebench.device import Device

    dev = Device(board["port"])
    _watch(request.node, board, dev)
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
def own_board(request, simulated, tmp_path):
    """start(heap=, dialect=, card=, state=) -> (bench, board, device): a simulated board of the test's own
    (a heap, modem dialect or SIM the session's board does not have), deployed and connected; stopped after."""
    from safebench import deploy
    from safebench.device import Device
    from safebench.simulated_bench import SimulatedBench

    started = []
    emulated = _emulated(request.config)

    def start(heap=None, dialect=None, card=None, state=None):
        if emulated:
            from safebench.simulated_bench import EMULATED

            if heap:
                pytest.skip(f"needs a {heap} heap: an emulated Pico has the heap its image gives it "
                            "(`make bench` finds the Pico's heap minimum per operation)")
            if dialect not in (None, EMULATED[EMULATED_TYPE][1]):
                pytest.skip(f"needs a {dialect} modem: the Pico board's modem is a SIMCom SIM7080G")
        bench = SimulatedBench(state or tmp_path / f"own{len(started)}", attached=True)
        started.append(bench)
        if emulated:
            _copy_session_flash(request, bench.dir / "sim0")
        bench.up(heap=heap, dialect=dialect, card=card, **emulated)
        board = bench.board()
        _watch(request.node, board)
        deploy.deploy(board["port"], board["type"], bench.dir / "build")
        dev = Device(board["port"])
        started.append(dev)
        _watch(request.node, board, dev)
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


def _copy_session_flash(request, home):
    """Start an emulated Pico of a test's own from a copy of the session Pico's flash, firmware deployed:
    the deploy then only compares hashes (a new flash costs ~30 s of copying). The harness replaces the
    image file whole, so a copy is always one consistent littlefs."""
    request.getfixturevalue("board")  # deployed
    flash = Path(request.getfixturevalue("simulated_bench").board()["flash"])
    home.mkdir(parents=True, exist_ok=True)
    for suffix in ("", ".firmware"):
        shutil.copyfile(f"{flash}{suffix}", home / f"{flash.name}{suffix}")


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


# ---- what a test's report carries ----------------------------------------------------------------

def _watch(item, board, device=None):
    """Name `board` in the item's JUnit record, and remember where its trace stands, so that if the test
    fails its report carries the board's serial log (from `device`) and the AT lines and APDUs since."""
    watched = item.stash.setdefault(_WATCHED, [])
    for w in watched:
        if w["board"]["port"] == board["port"]:
            w["device"] = w["device"] or device
            return
    trace = board.get("trace")
    start = Path(trace).stat().st_size if trace and Path(trace).exists() else 0
    watched.append({"board": board, "device": device, "trace": trace, "start": start})
    item.user_properties.append(("board", _describe(board)))


def _describe(board):
    """"sim0 (unix_sim) on .../tty", "sim0 (pico_waveshare_sim7080g, RPI_PICO-v1.28.0.uf2) on .../tty"; a
    --port board has no name: "picow_bg95 on /dev/ttyACM0"."""
    kind = f"{board['type']}, {Path(board['firmware']).name}" if board.get("emulated") else board["type"]
    what = f"{board['name']} ({kind})" if board["name"] else board["type"]
    return f"{what} on {board['port']}"


def _attach(item, report, title, name, text):
    """`text` as a section of the report (the terminal's) and a property of the test (the JUnit record's:
    pytest writes the properties its last report carries, so the item's list is extended as well)."""
    report.sections.append((title, text))
    report.user_properties.append((name, text))
    item.user_properties.append((name, text))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    """A test that uses the session's board without a device still names it, and on a lab's board JUnit says
    which place it ran on. Only tests that use the HIL fixtures are touched: other projects' tests never see
    this plugin."""
    if item.config.stash.get(_LAB_PLACE, None):
        item.user_properties.append(("lab_place", item.config.stash[_REAL_BOARD]["name"]))
    try:
        return (yield)
    finally:
        board = getattr(item, "funcargs", {}).get("board")
        if board is not None and board is item.config.stash.get(_SESSION_BOARD, None):
            _watch(item, board)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    watched = item.stash.get(_WATCHED, [])
    if not report.failed or not watched or item.stash.get(_ATTACHED, False):
        return report
    item.stash[_ATTACHED] = True  # once: a test failing in call and teardown carries them once
    for w in watched:
        name = _describe(w["board"])  # with its port: a test's own boards are all called sim0
        if w["device"] is not None:
            log = b"\n".join(w["device"].log).decode(errors="replace")
            _attach(item, report, f"serial log of {name}", "serial_log", log)
        trace = _trace_since(w["trace"], w["start"])
        if trace is not None:
            _attach(item, report, f"AT/APDU trace of {name}", "trace", trace)
    return report


def _trace_since(path, start):
    """The last TRACE_LINES lines written to the trace at `path` since offset `start`, or None."""
    if not path or not Path(path).exists():
        return None
    with open(path, "rb") as f:
        f.seek(start)
        lines = f.read().decode(errors="replace").splitlines()
    return "\n".join(lines[-TRACE_LINES:])
