"""What the HIL tests share: mpremote on the board's port, and the board's files changed through it, as a
user changes them, on every kind of board (a real one, a simulated one's folder, an emulated one's flash)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

MPREMOTE = str(Path(sys.executable).with_name("mpremote"))


def _mpremote(port, *args):
    return subprocess.run([MPREMOTE, "connect", port, *args], capture_output=True, text=True, timeout=60)


class BoardFiles:
    """Files in the board's working folder. mpremote stops the firmware: reboot the device afterwards."""

    def __init__(self, port):
        self.port = port

    def _exec(self, code):
        res = _mpremote(self.port, "exec", code)
        assert res.returncode == 0, res.stderr

    def write(self, name, text):
        self._exec(f"f = open({name!r}, 'w'); f.write({text!r}); f.close()")

    def read(self, name):
        res = _mpremote(self.port, "exec", f"print(repr(open({name!r}).read()))")
        assert res.returncode == 0, res.stderr
        return ast.literal_eval(res.stdout.strip())

    def flip(self, name, offset):
        """Flip one bit of the file's byte at `offset`: a flash cell gone bad, or someone editing it."""
        self._exec(f"f = open({name!r}, 'rb'); d = bytearray(f.read()); f.close(); d[{offset}] ^= 1\n"
                   f"f = open({name!r}, 'wb'); f.write(d); f.close()")

    def remove(self, prefix):
        self._exec(f"import os\nfor n in os.listdir():\n if n.startswith({prefix!r}): os.remove(n)")


@pytest.fixture
def mpremote():
    """mpremote(port, *args) -> the finished process (text output)."""
    return _mpremote


@pytest.fixture
def board_files():
    """board_files(port) -> BoardFiles."""
    return BoardFiles
