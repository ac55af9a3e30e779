"""The import-direction check: the real tree passes, and synthetic trees show each kind of violation."""

from pathlib import Path

import pytest
from import_layers import check
from import_layers.__main__ import main

REPO = Path(__file__).resolve().parents[3]

# A small tree shaped like the real one that breaks no rule (each file imports within its layer or lower).
CLEAN = {
    "host/safebench_simulator/__init__.py": "",
    "host/safebench_simulator/modem.py": "import os\n\nfrom . import uicc\n",
    "host/safebench_simulator/uicc.py": "",
    # MicroPython run inside the simulated board: not checked, though this would be a back import.
    "host/safebench_simulator/unixboard/sim_boot.py": "import safebench.cli\n",
    "host/safebench_simulator/tests/test_modem.py": "from safebench.deploy import deploy\n",
    "host/safebench/__init__.py": "from pathlib import Path\n",
    "host/safebench/deploy.py": "from safebench_simulator.modem import Modem\n\nfrom .usb_boards import f\n",
    "host/safebench/usb_boards.py": "from safebench import FIRMWARE_DIR\n",
    "host/safebench/testing/__init__.py": "",
    "host/safebench/testing/pytest_plugin.py": "from ..deploy import deploy\n",
    "host/safebench/cli.py": "from safebench.testing import pytest_plugin\n\nfrom . import deploy\n",
    "host/safebench/__main__.py": "from .cli import main\n",
    "host/safebench/tests/test_cli.py": "from safebench.cli import main\n",
    "hil_tests/test_board.py": "import safebench.testing.pytest_plugin\n",
    "tools/benchmarks/__init__.py": "",
    "tools/benchmarks/run.py": "import safebench_simulator\nfrom safebench.cli import main\n",
    "boards/board_common.py": "from machine import UART\n",
    "boards/unix_sim.py": "from board_common import open_uart\n",
    "firmware/manifest.py": "include('core')\n",
    "firmware/core/manifest.py": "import tls_rpc\n",  # a manifest, not a module: not checked
    "firmware/core/atchannel.py": "import time\n",
    "firmware/core/jsonrpc.py": "",
    "firmware/core/service.py": "import jsonrpc\n\n\ndef start():\n    import board\n    import atchannel\n",
    "firmware/readings/cbor.py": "",
    "firmware/readings/reading.py": "import service\nfrom cbor import dumps\n",
    "firmware/tls/tls13.py": "import board\n",
    "firmware/tls/tls_rpc.py": "from tls13 import connect\n",
    "firmware/main.py": "import service\nfrom reading import signed\nfrom tls_rpc import echo\n",
    "firmware/tests/mpy_test_tls.py": "import reading\nimport tls13\n",  # runs in the VM: not checked
}


def build(root: Path, changes: dict[str, str] | None = None) -> Path:
    for path, source in {**CLEAN, **(changes or {})}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(source)
    # As in the checkout: the firmware as package data, through a link the check must not follow.
    (root / "host/safebench/firmware").symlink_to("../../firmware")
    return root


def test_the_real_tree_passes():
    violations = check(REPO)
    assert not violations, "\n".join(map(str, violations))


def test_a_clean_tree_passes(tmp_path):
    assert check(build(tmp_path)) == []


def test_the_command_exits_1_on_a_violation_and_0_without(tmp_path, capsys):
    assert main([str(build(tmp_path / "clean"))]) == 0
    assert "safebench_simulator" in capsys.readouterr().out  # the layers are printed
    assert main([str(build(tmp_path / "bad", {"firmware/core/jsonrpc.py": "import tls13\n"}))]) == 1
    out = capsys.readouterr().out
    assert "firmware/core/jsonrpc.py:1: core (layer 2) imports firmware/tls/tls13.py" in out


@pytest.mark.parametrize("path, source, expected", [
    ("firmware/core/jsonrpc.py", "from tls13 import connect\n",
     "firmware/core/jsonrpc.py:1: core (layer 2) imports firmware/tls/tls13.py of tls (layer 3)"),
    ("host/safebench_simulator/uicc.py", "import safebench.deploy\n",
     "host/safebench_simulator/uicc.py:1: safebench_simulator (layer 1) imports host/safebench/deploy.py"),
    ("host/safebench/usb_boards.py", "from safebench.cli import main\n",
     "host/safebench/usb_boards.py:1: safebench core (layer 2) imports host/safebench/cli.py"),
    ("host/safebench/usb_boards.py", "def find():\n    from . import cli\n",  # lazy: still an arrow
     "host/safebench/usb_boards.py:2: safebench core (layer 2) imports host/safebench/cli.py"),
    ("host/safebench_simulator/uicc.py", "x = 1\n__import__('safebench.cli')\n",
     "host/safebench_simulator/uicc.py:2: safebench_simulator (layer 1) imports host/safebench/cli.py"),
    ("host/safebench/testing/pytest_plugin.py", "import benchmarks.run\n",
     "safebench.testing (layer 3) imports tools/benchmarks/run.py of tools and tests (layer 5)"),
    ("firmware/readings/cbor.py", "import tls13\n",
     "firmware/readings/cbor.py:1: readings (layer 3) imports firmware/tls/tls13.py of tls (layer 3)"),
    ("firmware/tls/tls13.py", "def f():\n    from cbor import dumps\n",
     "firmware/tls/tls13.py:2: tls (layer 3) imports firmware/readings/cbor.py of readings (layer 3)"),
    ("boards/board_common.py", "import atchannel\n",
     "boards/board_common.py:1: boards (layer 1) imports firmware/core/atchannel.py of core (layer 2)"),
    ("host/safebench/deploy.py", "import tls13\n",
     "host/safebench/deploy.py:1: host code imports the firmware (tls13)"),
    ("hil_tests/test_board.py", "from safebench.firmware.core import service\n",
     "hil_tests/test_board.py:1: host code imports the firmware (safebench.firmware.core.service)"),
    ("firmware/gnss/gps.py", "", "firmware/gnss/gps.py:1: in no layer"),
])
def test_a_back_import_fails(tmp_path, path, source, expected):
    first, *others = [str(v) for v in check(build(tmp_path, {path: source}))]
    assert expected in first
    assert all(": import cycle: " in v for v in others), others  # importing upwards may close a cycle too


def test_a_host_cycle_through_a_lazy_import_fails(tmp_path):
    tree = build(tmp_path, {"host/safebench/usb_boards.py": "def probe():\n    from .deploy import deploy\n"})
    assert [str(v) for v in check(tree)] == [
        "host/safebench/deploy.py:3: import cycle: host/safebench/deploy.py -> host/safebench/usb_boards.py"
        " -> host/safebench/deploy.py"]


def test_a_firmware_cycle_fails(tmp_path):
    tree = build(tmp_path, {"firmware/core/atchannel.py": "import service\n"})
    assert [str(v) for v in check(tree)] == [
        "firmware/core/atchannel.py:1: import cycle: firmware/core/atchannel.py -> firmware/core/service.py"
        " -> firmware/core/atchannel.py"]


def test_a_cycle_of_three_names_every_file(tmp_path):
    tree = build(tmp_path, {"firmware/core/atchannel.py": "import jsonrpc\n",
                            "firmware/core/jsonrpc.py": "import service\n"})
    (cycle,) = check(tree)
    assert str(cycle).endswith("import cycle: firmware/core/atchannel.py -> firmware/core/jsonrpc.py"
                               " -> firmware/core/service.py -> firmware/core/atchannel.py")
