"""The `vectors` fixture, a pytest plugin every test folder shares (pyproject: `-p vectors`): test modules cannot
import each other (--import-mode=importlib), and the repository has one vectors folder."""

from pathlib import Path

import pytest

VECTORS_DIR = Path(__file__).resolve().parents[2] / "firmware" / "tests" / "vectors"


class Vectors:
    """firmware/tests/vectors, the one vectors folder: file paths, and the records of its ``.txt`` files.

    A ``.txt`` file holds records of ``name = value`` lines separated by blank lines, ``#`` comments; values
    are hex, except ``result`` (text, e.g. P or F) and ``tlen`` (decimal). The firmware's tests read the same
    files in MicroPython with firmware/tests/tvectors.py.
    """

    def path(self, name):
        return VECTORS_DIR / name

    def load(self, name):
        records, current = [], {}
        for line in self.path(name).read_text().splitlines() + [""]:
            line = line.strip()
            if line.startswith("#"):
                continue
            if not line:
                if current:
                    records.append(current)
                current = {}
                continue
            key, _, value = line.partition("=")
            key, value = key.strip(), value.strip()
            current[key] = value if key == "result" else int(value) if key == "tlen" else bytes.fromhex(value)
        return records


@pytest.fixture(scope="session")
def vectors():
    return Vectors()
