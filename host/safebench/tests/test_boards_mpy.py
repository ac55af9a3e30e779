"""Deploy compiles for the board it talks to: .mpy version and native architecture from sys.implementation._mpy."""

import pytest

from safebench import deploy
from safebench.errors import DeployError
from safebench.simulated_bench import SimulatedBench

# (sys.implementation._mpy, version, sub-version, -march): values as boards report them.
BOARDS = [
    (0xB06, 6, 3, "x64"),          # the unix port on x86-64 (the simulated board)
    (0x2B06, 6, 3, "xtensawin"),   # ESP32, ESP32-S3
    (0x1306, 6, 3, "armv6m"),      # RP2040
    (0x1F06, 6, 3, "armv7emsp"),   # RP2350 (Cortex-M33), STM32F4
    (0x2F06, 6, 3, "rv32imc"),     # ESP32-C3/C6
    (0x2506, 6, 1, "xtensa"),      # ESP8266, an older sub-version
    (0x0006, 6, 0, None),          # a build without a native emitter
]


@pytest.mark.parametrize("mpy, version, sub, arch", BOARDS)
def test_mpy_target(mpy, version, sub, arch):
    assert deploy.mpy_target(mpy) == {"version": version, "sub": sub, "arch": arch}
    assert deploy.march_for(mpy, emitted=(6, 3)) == arch


def test_unknown_arch_and_versions_refused():
    with pytest.raises(DeployError, match="native architecture 14, which mpy-cross does not know"):
        deploy.mpy_target(14 << 10 | 6)
    with pytest.raises(DeployError, match="the board loads .mpy version 5 but mpy-cross emits version 6"):
        deploy.march_for(0x2805, emitted=(6, 3))
    with pytest.raises(DeployError, match="reports no .mpy version"):
        deploy.march_for(0, emitted=(6, 3))


def test_pinned_mpy_cross_emits_v6():
    assert deploy.mpy_cross_version() == (6, 3)


def test_build_for_an_arch(tmp_path):
    files = deploy.build("picow_bg95", tmp_path, march="armv6m")
    assert "board.mpy" in files and "lib/board_common.mpy" in files
    assert all((tmp_path / f).read_bytes()[:2] == b"M\x06" for f in files if f.endswith(".mpy"))
    with pytest.raises(DeployError, match="mpy-cross failed"):
        deploy.build("picow_bg95", tmp_path / "x", march="z80")


@pytest.mark.timeout(90)
def test_deploy_reads_the_simulated_board(tmp_path):
    bench = SimulatedBench(tmp_path / "state", attached=True)
    board = bench.up()["boards"][0]
    try:
        assert deploy.mpy_target(deploy.read_mpy(board["port"]))["arch"] == "x64"
        res = deploy.deploy(board["port"], "unix_sim", tmp_path / "build")
        assert res["mpy"] == {"version": 6, "sub": 3, "arch": "x64"}
        assert res["copied"] == res["files"]
        again = deploy.deploy(board["port"], "unix_sim", tmp_path / "build")
        assert again["copied"] == []  # unchanged files are left alone
    finally:
        bench.down()
    with pytest.raises(DeployError, match=r"cannot read the .mpy version of the board on /nonexistent"):
        deploy.deploy("/nonexistent", "unix_sim", tmp_path / "build")
