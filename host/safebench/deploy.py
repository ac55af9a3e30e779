"""Putting the firmware on a board: compile it with mpy-cross, copy what changed with mpremote.

The board's flash gets `main.py` (boards run only a .py entry point), `board.mpy` (its board
definition from `boards/`), `lib/board_common.mpy`, `sim.json` (only when told where its SIM keeps what:
otherwise the firmware finds that on the card, docs/iotsafe.md §7.4), `network.json` (only when given: the
APN and registration wait for the SIM it carries, docs/hardware.md §8), and `lib/*.mpy`: the modules the
manifests of the chosen features name (`firmware/<feature>/manifest.py`, micropython-lib style, evaluated
here as MicroPython's manifestfile.py would; every feature unless told). mpremote compares hashes and skips
unchanged files; modules of features left out, and a `sim.json` not given this time, are deleted (a
`network.json` stays: the SIM's network settings outlive a firmware update).

Before compiling, the board is asked for `sys.implementation._mpy`: a board whose .mpy version is not
the one mpy-cross emits would refuse every file ("incompatible .mpy file"), so deploy refuses first,
and the code is compiled with `-march=` for the board's native architecture.
"""

import json
import logging
import os
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path

from . import BOARDS_DIR, FIRMWARE_DIR, tool_lines
from .board_definitions import BOARD_COMMON, board_types
from .errors import BoardError, DeployError

log = logging.getLogger(__name__)


def _tool(name):
    exe = Path(sys.executable).with_name(name)
    return str(exe) if exe.exists() else shutil.which(name) or name


# sys.implementation._mpy: bits 0-7 the .mpy version, 8-9 the sub-version (native code ABI), 10+ the
# native architecture, indexed as MicroPython's MP_NATIVE_ARCH_* (the names are mpy-cross's -march values).
MPY_ARCHS = (None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp", "xtensa",
             "xtensawin", "rv32imc", "rv64imc")


def mpy_target(mpy):
    """{"version", "sub", "arch"} of a `sys.implementation._mpy` value; arch None when it has no native emitter."""
    index = mpy >> 10
    if index >= len(MPY_ARCHS):
        raise DeployError(f"the board reports native architecture {index}, which mpy-cross does not know")
    return {"version": mpy & 0xFF, "sub": (mpy >> 8) & 3, "arch": MPY_ARCHS[index]}


def mpy_cross_version():
    """(version, sub-version) of the .mpy files the installed mpy-cross emits, e.g. (6, 3)."""
    out = subprocess.run([_tool("mpy-cross"), "--version"], capture_output=True, text=True).stdout
    m = re.search(r"mpy v(\d+)\.(\d+)", out)
    if not m:
        raise DeployError(f"cannot tell which .mpy version mpy-cross emits: {out.strip() or 'no output'}")
    return int(m.group(1)), int(m.group(2))


def march_for(mpy, emitted=None):
    """The -march for a board reporting `mpy`; refuses a board that cannot load what mpy-cross emits."""
    target, version = mpy_target(mpy), (emitted or mpy_cross_version())[0]
    if not target["version"]:
        raise DeployError("the board reports no .mpy version (no sys.implementation._mpy): flash a current MicroPython")
    if target["version"] != version:
        raise DeployError(f"the board loads .mpy version {target['version']} but mpy-cross emits version {version}:"
                          f" flash a MicroPython that loads .mpy v{version}, or pin an mpy-cross that emits"
                          f" v{target['version']}")
    return target["arch"]  # bytecode-only modules load whatever the sub-version; it matters for native code


def read_mpy(port):
    """The board's `sys.implementation._mpy` (through mpremote: the firmware's `info` reports only bits 0-7)."""
    from .usb_boards import probe_micropython

    try:
        return probe_micropython(port)["mpy"]
    except BoardError as e:
        raise DeployError(f"cannot read the .mpy version of the board on {port}: {e}") from None


CORE = "core"  # the feature every image has: main.py serves the protocol from it


def features():
    """The firmware's features: its folders with a manifest.py (core, enrolment, mqtt, readings, tls)."""
    return sorted(p.parent.name for p in FIRMWARE_DIR.glob("*/manifest.py"))


def feature_modules(names=None):
    """{path under lib/ ("cbor.py"): source file} of what the manifests of the features `names` name,
    core's always; None: every feature."""
    known = features()
    unknown = [n for n in names or () if n not in known]
    if unknown:
        raise DeployError(f"unknown feature {', '.join(map(repr, unknown))}; the firmware's features: "
                          f"{', '.join(known)}")
    modules = {}
    for name in dict.fromkeys([CORE, *(known if names is None else names)]):
        manifests = _Manifests()  # each feature on its own, as a build of that manifest alone would see it
        manifests.require(name)
        for target, src in manifests.modules.items():
            if modules.setdefault(target, src) != src:
                raise DeployError(f"features name two modules {target}: {modules[target]} and {src}")
    return modules


def mip_package(feature=None):
    """The mip package.json of `feature`: the modules its manifest and those it requires name, what
    `deploy --features FEATURE` copies (None: every feature), with URLs relative to the folder it lives in
    (firmware/FEATURE/, firmware/) and the feature's metadata version (core's for the whole firmware)."""
    modules = feature_modules([feature] if feature else None)
    manifests = _Manifests()
    manifests.require(feature or CORE)
    folder = (FIRMWARE_DIR / (feature or "")).resolve()
    return {"urls": [[target, Path(os.path.relpath(src, folder)).as_posix()] for target, src in modules.items()],
            "deps": [], "version": manifests.metadata[feature or CORE].get("version")}


class _Manifests:
    """Evaluates manifest files with the functions MicroPython's tools/manifestfile.py gives them, as far as
    deploy needs: which modules they name. A manifest runs once however often it is included or required;
    metadata() comes first and once per package (require() starts one, include() stays in it), as there."""

    def __init__(self):
        self.modules = {}
        self.metadata = {}  # {package name: its metadata() fields}
        self._libraries = {}
        self._done = set()
        self._metadata = []  # one slot per require() being evaluated

    def require(self, name, library=None, **options):
        root = self._libraries.get(library) if library else FIRMWARE_DIR.resolve()
        if root is None:
            raise DeployError(f"require({name!r}, library={library!r}): no add_library({library!r}, ...) before")
        manifest = root / name / "manifest.py"
        if not manifest.is_file():
            raise DeployError(f"require({name!r}): {name!r} is not a feature of the firmware ({root})")
        self._metadata.append(None)
        try:
            self._run(manifest)
            self.metadata.setdefault(name, self._metadata[-1] or {})
        finally:
            self._metadata.pop()

    def _run(self, manifest):
        manifest = manifest.resolve()
        if manifest in self._done:
            return
        self._done.add(manifest)
        here = manifest.parent

        def metadata(**fields):
            if self._metadata[-1] is not None:
                raise DeployError(f"{manifest}: a second metadata() in one package (use require(), not include())")
            self._metadata[-1] = fields

        def first():
            if self._metadata[-1] is None:
                raise DeployError(f"{manifest}: metadata() must come first")

        def include(path, **options):
            for one in [path] if isinstance(path, str) else path:
                target = _local(here, one)
                self._run(target / "manifest.py" if target.is_dir() else target)

        def require(name, library=None, **options):
            first()
            self.require(name, library, **options)

        def add_library(name, path, prepend=False):
            self._libraries[name] = _local(here, path).resolve()

        def module(path, base_path=".", opt=None):
            first()
            if not path.endswith(".py"):
                raise DeployError(f"{manifest}: module({path!r}) is not a .py file")
            self._add(manifest, path, _local(here, base_path) / path)

        api = {"metadata": metadata, "include": include, "require": require, "add_library": add_library,
               "module": module}
        try:
            exec(compile(manifest.read_text(), str(manifest), "exec"), api)
        except DeployError:
            raise
        except Exception as e:
            raise DeployError(f"{manifest}: {type(e).__name__}: {e}") from None

    def _add(self, manifest, target, src):
        src = src.resolve()
        if not src.is_file():
            raise DeployError(f"{manifest}: no such module {src}")
        if self.modules.setdefault(target, src) != src:
            raise DeployError(f"{manifest}: {target} is named twice, as {self.modules[target]} and {src}")


def _local(here, path):
    """A manifest's path: relative to its folder; path variables ($(PORT_DIR), ...) belong to frozen builds."""
    if "$(" in path:
        raise DeployError(f"{here}: {path!r}: path variables mean a frozen build, not a deploy")
    return here / path


def _lib_file(target):
    return f"lib/{Path(target).with_suffix('.mpy').as_posix()}"


SIM_ROLES_FILE = "sim.json"
# The roles a sim.json may name (firmware/core/simroles.py NAMES), each a hex container ID or "" for none.
SIM_ROLES = ("signing_key", "signing_public_key", "client_cert", "ca_cert", "ephemeral_key", "peer_key")


def _check_sim_roles(roles):
    """A DeployError unless `roles` is {role of SIM_ROLES: hex ID or ""}: the firmware would misread anything else."""
    if not isinstance(roles, dict):
        raise DeployError('SIM roles: give a JSON object of role: hex ID, e.g. {"signing_key": "0002"}')
    for name, value in roles.items():
        if name not in SIM_ROLES:
            raise DeployError(f"SIM roles: unknown role {name!r} (roles: {', '.join(SIM_ROLES)})")
        if not isinstance(value, str) or not re.fullmatch(r"([0-9A-Fa-f]{2}){0,20}", value):
            raise DeployError(f'SIM roles: {name} must be a hex container ID (e.g. "0002"), or "" for none')


NETWORK_FILE = "network.json"
# What a network.json may set (firmware/core/network_settings.py DEFAULTS), and of which type.
NETWORK_SETTINGS = {"apn": str, "user": str, "password": str, "auth": int, "registration_ms": int}


def _check_network(settings):
    """A DeployError unless `settings` is {setting of NETWORK_SETTINGS: a value the firmware takes}."""
    if not isinstance(settings, dict):
        raise DeployError('network settings: give a JSON object, e.g. {"apn": "iot.example"}')
    for name, value in settings.items():
        kind = NETWORK_SETTINGS.get(name)
        if kind is None:
            raise DeployError(f"network settings: unknown setting {name!r} (settings: {', '.join(NETWORK_SETTINGS)})")
        if type(value) is not kind or (kind is str and '"' in value):
            raise DeployError(f"network settings: {name} must be {'text without quotes' if kind is str else 'a whole number'}")
    if not 0 <= settings.get("auth", 0) <= 3:
        raise DeployError("network settings: auth is 0 none, 1 PAP, 2 CHAP or 3 either")


def build(board_type, out_dir, march=None, sim_roles=None, features=None, network=None):
    """Stage the flash image for `board_type` in `out_dir` (`march`: mpy-cross -march); returns its files.

    `sim_roles` ({"signing_key": "0002", ...}) becomes `sim.json`: where the board's SIM keeps what, overriding
    what the firmware finds on the card; `network` ({"apn": ...}) becomes `network.json`.
    `features` (names of `features()`; None: all) chooses the firmware modules: those their manifests name."""
    board_src = BOARDS_DIR / f"{board_type}.py"
    if not board_src.exists():
        raise DeployError(f"unknown board type {board_type!r}; known: {', '.join(board_types())}")
    if sim_roles:
        _check_sim_roles(sim_roles)
    if network is not None:
        _check_network(network)
    modules = feature_modules(features)
    out = Path(out_dir)
    shutil.rmtree(out, ignore_errors=True)
    (out / "lib").mkdir(parents=True)
    shutil.copy(FIRMWARE_DIR / "main.py", out / "main.py")
    _compile(board_src, out / "board.mpy", march)
    _compile(BOARDS_DIR / f"{BOARD_COMMON}.py", out / "lib" / f"{BOARD_COMMON}.mpy", march)
    for target, src in modules.items():
        dst = out / _lib_file(target)
        dst.parent.mkdir(parents=True, exist_ok=True)
        _compile(src, dst, march)
    if sim_roles:
        (out / SIM_ROLES_FILE).write_text(json.dumps(sim_roles, sort_keys=True))
    if network is not None:
        (out / NETWORK_FILE).write_text(json.dumps(network, sort_keys=True))
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


# -O3 leaves out the line-number tables (a traceback names the file and function, at line 1): 6 % of the .mpy
# files, which a board loads into its heap; 1-2 KB of a signed reading's on the emulated Pico (docs/benchmarks.md).
MPY_CROSS_OPTIONS = ("-O3",)


def _compile(src, dst, march=None):
    res = subprocess.run([_tool("mpy-cross"), *MPY_CROSS_OPTIONS, *([f"-march={march}"] if march else []),
                          "-o", str(dst), "-s", src.name, str(src)], capture_output=True, text=True)
    if res.returncode:
        raise DeployError(f"mpy-cross failed on {src.name}: {res.stderr.strip()}")


_MKDIRS = "import os\nfor d in {!r}:\n try:\n  os.mkdir(d)\n except OSError:\n  pass\n"


def copy(port, staged_dir, timeout=120, progress=None):
    """Copy the staged image to the board's flash root with mpremote; returns the files it left as they were.

    One mpremote session: the folders made, then one `fs cp` per folder, which names each file as it
    starts on it (what `progress(text)` hears) and skips a file whose hash the board already has."""
    staged = Path(staged_dir)
    files = sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file())
    folders = sorted({posixpath.dirname(f) for f in files})  # "" (the root) first, a parent before its child
    argv = [_tool("mpremote"), "connect", port, "exec", _MKDIRS.format([f for f in folders if f])]
    for folder in folders:
        argv += ["+", "fs", "cp", *(f for f in files if posixpath.dirname(f) == folder), f":{folder or '.'}/"]
    log.debug("copying %d files: %r", len(files), argv)

    def on_file(n, line):
        if progress:
            progress(f"deploying file {n} of {len(files)}: {line.split()[1]}")

    out = _stream(argv, staged, timeout, port, on_file)
    # "Up to date: ./main.py", "Up to date: lib/x.mpy": normalise to "main.py", "lib/x.mpy"
    return {posixpath.normpath(line.split(":", 1)[1].strip()) for line in out if line.startswith("Up to date:")}


def _stream(argv, cwd, timeout, port, on_file):
    """Run mpremote, calling `on_file(n, line)` at each "cp FILE :DEST" line it prints; returns its lines."""
    copied = []

    def on_line(line):
        if line.startswith("cp "):
            copied.append(line)
            on_file(len(copied), line)

    done = tool_lines.run(argv, on_line, timeout, cwd=cwd)
    if done.timed_out:
        raise DeployError(f"mpremote did not finish copying to {port} within {timeout} s")
    if done.returncode:
        raise DeployError(f"mpremote could not copy to {port}: {' '.join(done.lines).strip()[-300:]}")
    return done.lines


def remove(port, paths, timeout=60):
    """Delete `paths` from the board's flash where they exist; returns those it deleted."""
    from .usb_boards import mpremote

    script = f"import os\nfor p in {sorted(paths)!r}:\n try:\n  os.remove(p)\n  print('removed', p)\n" \
             " except OSError:\n  pass\n"
    try:
        out = mpremote(port, "exec", script, timeout=timeout)
    except BoardError as e:
        raise DeployError(f"cannot delete the modules of features left out: {e}") from None
    return [line.split(" ", 1)[1].strip() for line in out.splitlines() if line.startswith("removed ")]


def deploy(port, board_type, build_dir, sim_roles=None, features=None, progress=None, network=None):
    """Check the board's .mpy version, build for its architecture, copy, delete the modules of features left
    out; returns the files, what was copied and removed, and the target. `progress(text)` hears each stage
    and each file."""
    say = progress or (lambda text: None)
    say(f"deploying: asking the board on {port} which .mpy it loads")
    mpy = read_mpy(port)
    march = march_for(mpy)
    say(f"deploying: compiling the firmware for {board_type} ({march or 'bytecode only'})")
    files = build(board_type, build_dir, march, sim_roles, features, network)
    unchanged = copy(port, build_dir, progress=progress)
    left_out = ({_lib_file(target) for target in feature_modules()} | {SIM_ROLES_FILE}) - set(files)
    if left_out:
        say(f"deploying: deleting what this deploy leaves out (modules of features not chosen, an old sim.json)"
            f" from {port}")
    removed = remove(port, left_out) if left_out else []
    return {"files": files, "copied": [f for f in files if f not in unchanged], "removed": removed,
            "mpy": mpy_target(mpy)}
