"""Import-direction check for the whole tree, host and firmware: a module imports only its own layer or
lower ones, never a higher one, and no import cycle exists (a lazy import inside a function is still an
arrow). The source is read with `ast`; no project code is imported or run.

`python -m import_layers [repo]` prints the layers and any violation. docs/architecture.md tells the same
rules in prose; the tables below are where they are enforced."""

import ast
import os
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layer:
    rank: int  # lowest first: a module may import its own layer or a lower rank, never a higher one
    name: str
    members: tuple[str, ...]  # repo-relative folders (ending in "/") or files; "*/tests/" = any tests/ folder


# Host: the Python packages under host/ and tools/, and hil_tests/. A module belongs to its most specific
# member, and a tests/ folder always wins (host/safebench/tests/ is layer 5, not safebench core).
HOST_LAYERS = (
    # Simulated hardware: knows nothing of the rig that drives it, nor of the tools and tests.
    Layer(1, "safebench_simulator", ("host/safebench_simulator/",)),
    # The rig library (bench file, USB discovery, deploy, provisioning, verification); may use the simulator.
    Layer(2, "safebench core", ("host/safebench/",)),
    # Test support that ships with safebench: the HIL pytest plugin, the TLS fault servers.
    Layer(3, "safebench.testing", ("host/safebench/testing/",)),
    # The host services, each a package: the verifying ingest (then the dashboard, the enrolment server).
    Layer(3, "safebench services", ("host/safebench/ingest/", "host/safebench/dashboard/", "host/safebench/est/")),
    # The command line: the top of what ships.
    Layer(4, "safebench.cli", ("host/safebench/cli/", "host/safebench/cli.py", "host/safebench/__main__.py")),
    # Developer tools, the HIL suite and every tests/ folder: may import anything; nothing shipped imports
    # them.
    Layer(5, "tools and tests", ("tools/", "hil_tests/", "*/tests/")),
)

# Firmware: MicroPython. On a board every module lies flat in lib/ and is imported by bare name, so a name
# means firmware/<feature>/<name>.py or boards/<name>.py (`board` is whichever board definition was
# deployed); any other name is a MicroPython built-in and ignored. Layers of one rank are peers: they never
# import each other.
FIRMWARE_LAYERS = (
    # Board definitions (pins, UART, power-up): import only each other.
    Layer(1, "boards", ("boards/",)),
    # AT channel, modem drivers, APDU transport, IoT SAFE client, JSON-RPC server, service.
    Layer(2, "core", ("firmware/core/",)),
    # Signed readings (CBOR, COSE, sequence counter): a peer of tls.
    Layer(3, "readings", ("firmware/readings/",)),
    # The TLS 1.3 stack on keys held by the SIM: a peer of readings.
    Layer(3, "tls", ("firmware/tls/",)),
    # The SIM's identity from an EST server through TLS (zero-touch enrolment).
    Layer(4, "enrolment", ("firmware/enrolment/",)),
    # Readings published to an MQTT broker through TLS: above them, renewing an enrolled identity when it goes
    # online (on a board with the enrolment feature).
    Layer(5, "mqtt", ("firmware/mqtt/",)),
    # The entry point: may import anything of the firmware.
    Layer(6, "main", ("firmware/main.py",)),
)

# Not checked: MicroPython run inside the simulated board, and the firmware tests (they run in the VM with
# every module on the path). Files named manifest.py under firmware/ are manifests, not modules.
UNCHECKED = ("host/safebench_simulator/unixboard/", "firmware/tests/")
# Host code reads the firmware only as data: importing any of these (or a firmware module's bare name) is
# a violation whatever the layer.
FIRMWARE_PACKAGES = ("firmware", "boards", "safebench.firmware", "safebench.boards")


@dataclass(frozen=True)
class Violation:
    path: str  # repo-relative
    line: int
    message: str

    def __str__(self):
        return f"{self.path}:{self.line}: {self.message}"


def layer_of(path: str, layers: tuple[Layer, ...]) -> Layer | None:
    """The layer of the repo-relative `path` (its most specific member), or None if no layer has it."""
    def score(member):
        if member.startswith("*/"):  # a folder of that name at any depth beats any path
            return (1, 0) if f"/{member[2:]}" in f"/{path}" else None
        inside = path == member or (member.endswith("/") and path.startswith(member))
        return (0, len(member)) if inside else None

    scored = [(score(m), layer) for layer in layers for m in layer.members if score(m)]
    return max(scored, key=lambda s: s[0])[1] if scored else None


def check(root: Path) -> list[Violation]:
    """Every layer violation, host import of the firmware, and import cycle in the tree at `root`."""
    root = Path(root)
    host = {_host_module(path): path for path in _python_files(root, ("host", "tools", "hil_tests"))}
    firmware = list(_python_files(root, ("boards", "firmware")))
    layers = {p: layer_of(p, HOST_LAYERS) for p in host.values()}
    layers |= {p: layer_of(p, FIRMWARE_LAYERS) for p in firmware}
    unlayered = [path for path, layer in layers.items() if layer is None]
    violations = [Violation(path, 1, "in no layer: add its folder to the layer table") for path in unlayered]
    trees = {}
    for path in layers:
        try:
            trees[path] = ast.parse((root / path).read_text(encoding="utf-8"), path)
        except SyntaxError as err:
            violations.append(Violation(path, err.lineno or 0, f"cannot parse: {err.msg}"))

    edges = {}  # importing file -> {imported file: line of the first such import}
    violations += _host_edges(host, firmware, trees, edges)
    _firmware_edges(firmware, trees, edges)
    for path, targets in edges.items():
        for target, line in targets.items():
            own, theirs = layers[path], layers[target]
            if own and theirs and theirs.name != own.name and theirs.rank >= own.rank:
                violations.append(Violation(path, line, f"{own.name} (layer {own.rank}) imports {target} of "
                                                        f"{theirs.name} (layer {theirs.rank})"))
    return sorted(violations, key=lambda v: (v.path, v.line)) + _cycles(edges)


def _host_edges(host: dict[str, str], firmware: list[str], trees, edges) -> list[Violation]:
    """Adds the host's arrows to `edges`; returns its imports of the firmware."""
    firmware_names = {Path(p).stem for p in firmware} | {"board"}
    # A bare name is a firmware module unless a host package or the standard library has it.
    firmware_names -= {name.split(".")[0] for name in host} | sys.stdlib_module_names
    violations = []
    for module, path in host.items():
        for line, name in _host_imports(trees.get(path), module, path.endswith("__init__.py")):
            if name.split(".")[0] in firmware_names or any(name == p or name.startswith(p + ".")
                                                            for p in FIRMWARE_PACKAGES):
                violations.append(Violation(path, line, f"host code imports the firmware ({name}); "
                                                        "read firmware files as data instead"))
            target = _longest_known_prefix(name, host)
            if target and host[target] != path:
                edges.setdefault(path, {}).setdefault(host[target], line)
    return violations


def _firmware_edges(firmware: list[str], trees, edges):
    by_name = {}  # bare name -> the file(s) it means on a board
    for path in firmware:
        by_name.setdefault(Path(path).stem, []).append(path)
    by_name.pop("main", None)  # the entry point, never imported
    by_name["board"] = [p for p in firmware if p.startswith("boards/") and p != "boards/board_common.py"]
    for path in firmware:
        for line, name in _firmware_imports(trees.get(path)):
            for target in set(by_name.get(name, ())) - {path}:
                edges.setdefault(path, {}).setdefault(target, line)


def _python_files(root: Path, tops: tuple[str, ...]):
    for top in tops:
        # os.walk does not follow links: host/safebench/firmware and host/safebench/boards are package data.
        for folder, dirs, files in os.walk(root / top):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
            for file in sorted(f for f in files if f.endswith(".py")):
                path = (Path(folder) / file).relative_to(root).as_posix()
                if not path.startswith(UNCHECKED) and not (top == "firmware" and file == "manifest.py"):
                    yield path


def _host_module(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    parts = parts[1:] if parts[0] in ("host", "tools") else parts  # source roots; hil_tests/ is itself one
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree):
    """(line, level, module, names) of every import statement and literal __import__/import_module call."""
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, ast.Import):
            yield from ((node.lineno, 0, alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names = tuple(alias.name for alias in node.names if alias.name != "*")
            yield node.lineno, node.level, node.module or "", names
        elif isinstance(node, ast.Call) and _called_name(node.func) in ("__import__", "import_module"):
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):  # a computed name is unknown
                yield node.lineno, 0, first.value, ()


def _called_name(func) -> str | None:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _host_imports(tree, module: str, is_package: bool):
    """(line, absolute dotted name) per imported thing; `from a import b` names a.b (a module or not)."""
    for line, level, name, names in _imports(tree):
        if level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            name = ".".join(package[:len(package) - level + 1] + ([name] if name else []))
        yield from ((line, f"{name}.{n}" if name else n) for n in names) if names else [(line, name)]


def _longest_known_prefix(name: str, modules) -> str | None:
    parts = name.split(".")
    prefixes = (".".join(parts[:n]) for n in range(len(parts), 0, -1))
    return next((prefix for prefix in prefixes if prefix in modules), None)


def _firmware_imports(tree):
    for line, level, name, _ in _imports(tree):
        if not level:  # flat lib/: only the first name counts
            yield line, name.split(".")[0]


def _cycles(edges: dict[str, dict[str, int]]) -> list[Violation]:
    """One violation per knot of mutually importing modules, showing its shortest cycle."""
    reach = {node: _reachable(node, edges) for node in edges}
    # A knot: the modules on a cycle through n, i.e. those n reaches that reach n back.
    knots = {frozenset({n} | {m for m in reach[n] if n in reach.get(m, ())})
             for n in edges if n in reach[n]}
    violations = []
    for knot in sorted(knots, key=sorted):
        start = min(knot)
        cycle = _shortest_cycle(start, edges, knot)
        others = sorted(knot - set(cycle))
        also = f"; also in the knot: {', '.join(others)}" if others else ""
        message = f"import cycle: {' -> '.join(cycle)}{also}"
        violations.append(Violation(start, edges[start][cycle[1]], message))
    return violations


def _reachable(start: str, edges) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        for target in edges.get(stack.pop(), ()):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def _shortest_cycle(start: str, edges, knot) -> list[str]:
    paths, queue = {start: [start]}, [start]
    for node in queue:  # breadth first, so the first way back to start is a shortest one
        for target in sorted(edges.get(node, ())):
            if target == start:
                return paths[node] + [start]
            if target in knot and target not in paths:
                paths[target] = paths[node] + [target]
                queue.append(target)
    raise AssertionError(f"{start} is in a knot but on no cycle")
