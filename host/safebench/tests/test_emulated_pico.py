"""An emulated Pico (rp2040js, official MicroPython images) as a board of the simulated bench.

The images are not part of the repository: SAFEBENCH_RP2040_IMAGES names their folder, by default
``../shared/emulation/rp2040/`` beside the checkout.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from safebench.errors import BenchError
from safebench.simulated_bench import BOOTROM, DEFAULT_IMAGE, DEFAULT_IMAGES, IMAGES_ENV, SimulatedBench
from safebench_simulator.rp2040.pico import harness_missing

IMAGES = os.environ.get(IMAGES_ENV) or str(DEFAULT_IMAGES)
V1_22 = os.path.join(IMAGES, "RPI_PICO-20231227-v1.22.0.uf2")
PICO = "pico_waveshare_sim7080g"

pytestmark = pytest.mark.skipif(
    harness_missing() is not None or not os.path.exists(os.path.join(IMAGES, BOOTROM)),
    reason=harness_missing() or f"no RP2040 images in {IMAGES} (set {IMAGES_ENV})")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("image, version", [(None, "1.28.0"), (V1_22, "1.22.0")], ids=["v1.28.0", "v1.22.0"])
def test_deploy_info_and_sign_on_the_emulated_pico(run_cli, no_leftovers, image, version):
    chosen = ("--firmware", image) if image else ()
    up = run_cli("bench", "up", "--board-type", PICO, "--emulate", *chosen, "--json", env={IMAGES_ENV: IMAGES})
    try:
        assert up.returncode == 0, up.stderr
        board = json.loads(up.stdout)["boards"][0]
        name = os.path.basename(image or DEFAULT_IMAGE)
        assert (board["type"], board["emulated"], os.path.basename(board["firmware"])) == (PICO, True, name)
        assert f"emulated pico_waveshare_sim7080g ({name})" in run_cli("bench", "status").stdout

        deploy = run_cli("deploy")
        assert deploy.returncode == 0, deploy.stderr
        info = run_cli("info", "--json")
        assert info.returncode == 0, info.stderr
        facts = json.loads(info.stdout)
        assert (facts["platform"], facts["micropython"], facts["board"]) == ("rp2", version, "pico-waveshare-sim7080g")
        sign = run_cli("sign", "--message", "from an emulated Pico")
        assert sign.returncode == 0, sign.stderr
        assert "signature verified" in sign.stdout
    finally:
        down = run_cli("bench", "down")
    assert down.stdout.strip() == "stopped: sim0"


@pytest.mark.timeout(60)
def test_flash_persists_across_down_and_up_and_down_finds_the_chip(tmp_path, no_leftovers):
    bench = SimulatedBench(tmp_path, attached=True)
    try:
        board = bench.up(board_type=PICO, firmware=V1_22)["boards"][0]
        assert board["dialect"] == "simcom"  # the modem the board definition drives
        (tmp_path / "bench.json").unlink()  # lost: down finds the parts by their command lines
        assert sorted(bench.running().values()) == ["sim0"] * 3  # modem, supervisor and the harness's chip
        assert bench.down() == ["sim0"]

        board = bench.up(board_type=PICO)["boards"][0]
        assert board["firmware"] == V1_22  # what the flash holds, not the default image
        bench.down()
        with pytest.raises(BenchError, match="holds RPI_PICO-20231227-v1.22.0.uf2: remove it"):
            bench.up(board_type=PICO, firmware=os.path.join(IMAGES, DEFAULT_IMAGE))
    finally:
        bench.down()


@pytest.mark.timeout(60)
def test_the_pico_runs_on_when_its_modem_goes_away(tmp_path, no_leftovers):
    """A Pico whose modem is switched off keeps running, its UART silent (the supervisor once died with it)."""
    bench = SimulatedBench(tmp_path, attached=True)
    try:
        board = bench.up(board_type=PICO)["boards"][0]
        os.kill(board["pids"]["modem"], signal.SIGKILL)
        deadline = time.monotonic() + 5
        while _open_files(board["pids"]["modem"]) and time.monotonic() < deadline:
            time.sleep(0.02)  # until the modem's pty is closed (a zombie holds no files)
        out = subprocess.run([sys.executable, "-m", "mpremote", "connect", board["port"], "exec", "print(1 + 1)"],
                             capture_output=True, text=True, timeout=30)

        assert out.stdout.strip() == "2", out.stderr
        assert "Traceback" not in Path(board["log"]).read_text()
    finally:
        bench.down()


def _open_files(pid):
    try:
        return os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []


def test_a_missing_image_is_one_line(run_cli, tmp_path):
    up = run_cli("bench", "up", "--board-type", PICO, "--emulate", env={IMAGES_ENV: str(tmp_path / "none")})
    assert up.returncode != 0
    assert up.stderr.strip().splitlines() == [
        f"safebench: no MicroPython image for the emulated Pico at {tmp_path / 'none' / DEFAULT_IMAGE}: give "
        f"--firmware or set {IMAGES_ENV} to the folder of {DEFAULT_IMAGE} and {BOOTROM}"]


def test_emulate_needs_a_board_type(run_cli):
    up = run_cli("bench", "up", "--emulate")
    assert up.returncode != 0
    assert up.stderr.strip().splitlines() == [
        "safebench: --emulate needs --board-type (pico_waveshare_sim7080g), and --board-type needs --emulate"]
    heap = run_cli("bench", "up", "--board-type", PICO, "--emulate", "--heap", "64K")
    assert heap.returncode == 1 and heap.stderr.strip().splitlines() == [
        "safebench: an emulated Pico has the heap its MicroPython image gives it: no heap for it"]
