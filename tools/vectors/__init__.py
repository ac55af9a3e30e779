"""The `vectors` fixture, a pytest plugin every test folder shares (pyproject: `-p vectors`): test modules cannot
import each other (--import-mode=importlib), and the repository has one vectors folder."""

from pathlib import Path

import pytest

VECTORS_DIR = Path(__file__).resolve().parents[2] / "firmware" / "tests" / "vectors"


def _firmware_reader():
    """firmware/tests/tvectors.py, the one reader of the records (it runs in MicroPython and CPython alike)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tvectors", VECTORS_DIR.parent / "tvectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Vectors:
    """firmware/tests/vectors, the one vectors folder: file paths, and the records of its ``.txt`` files
    (records of ``name = value`` lines, read by firmware/tests/tvectors.py, which the firmware's tests use
    in MicroPython)."""

    def __init__(self):
        self._reader = _firmware_reader()

    def path(self, name):
        return VECTORS_DIR / name

    def load(self, name):
        return self._reader.load(name)


@pytest.fixture(scope="session")
def vectors():
    return Vectors()
