"""An emulated Pico (rp2040js, official MicroPython images) as a board of the simulated bench.

The images are not part of the repository: they are in the images folder (safebench_simulator.rp2040.images:
$SAFEBENCH_RP2040_IMAGES, else the cache, which `.ci/run` seeds from ../shared/emulation/rp2040/).
"""

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from safebench.errors import BenchError
from safebench.simulated_bench import SimulatedBench
from safebench_simulator.rp2040.images import BOOTROM, IMAGES_ENV, folder, release_image
from safebench_simulator.rp2040.pico import harness_missing

IMAGES = str(folder())
V1_22 = os.path.join(IMAGES, "RPI_PICO-20231227-v1.22.0.uf2")
PICO = "pico_waveshare_sim7080g"

pytestmark = pytest.mark.skipif(
    harness_missing() is not None or not os.path.exists(os.path.join(IMAGES, BOOTROM)),
    reason=harness_missing() or f"no RP2040 images in {IMAGES} (python -m safebench_simulator.rp2040.images seed DIR)")


@pytest.mark.timeout(300)  # about 50 s alone; beside the emulated HIL sessions CI saw more than 120
def test_deploy_info_and_sign_on_the_emulated_pico(run_cli, no_leftovers):
    """The CLI's path on the default image (`make hil-emulated` deploys and signs on each image)."""
    up = run_cli("bench", "up", "--board-type", PICO, "--emulate", "--json", env={IMAGES_ENV: IMAGES})
    try:
        assert up.returncode == 0, up.stderr
        board = json.loads(up.stdout)["boards"][0]
        name = os.path.basename(release_image())
        assert (board["type"], board["emulated"], os.path.basename(board["firmware"])) == (PICO, True, name)
        assert f"emulated pico_waveshare_sim7080g ({name})" in run_cli("bench", "status").stdout

        deploy = run_cli("deploy")
        assert deploy.returncode == 0, deploy.stderr
        info = run_cli("info", "--json")
        assert info.returncode == 0, info.stderr
        facts = json.loads(info.stdout)
        assert (facts["platform"], facts["micropython"], facts["board"]) == ("rp2", "1.28.0", "pico-waveshare-sim7080g")
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
            bench.up(board_type=PICO, firmware=str(release_image()))
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


@pytest.mark.timeout(60)
def test_the_pico_drives_a_modem_port_given_with_modem(tmp_path, no_leftovers):
    """`bench up --emulate --modem PORT`: the Pico's UART0 (GP0/GP1) is that serial port, no modem is simulated,
    and bytes cross it both ways (a pty stands in for a modem on a USB-serial adapter)."""
    import tty

    modem, port = os.openpty()
    tty.setraw(modem)
    bench = SimulatedBench(tmp_path, attached=True)
    try:
        board = bench.up(board_type=PICO, modem=os.ttyname(port))["boards"][0]
        assert "modem" not in board["pids"] and board["modem"] == os.ttyname(port)
        script = ("from machine import UART, Pin\nimport time\n"
                  "u = UART(0, 115200, tx=Pin(0), rx=Pin(1), timeout=2000)\nu.write(b'AT\\r')\n"
                  "print(u.readline())\n")
        proc = subprocess.Popen([sys.executable, "-m", "mpremote", "connect", board["port"], "exec", script],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen = b""
        deadline = time.monotonic() + 30
        while not seen.endswith(b"AT\r") and time.monotonic() < deadline:
            if select.select([modem], [], [], 0.2)[0]:
                seen += os.read(modem, 64)
        os.write(modem, b"OK\r\n")
        out, err = proc.communicate(timeout=30)

        assert seen == b"AT\r"
        assert out.strip() == "b'OK\\r\\n'", err
    finally:
        bench.down()
        os.close(modem)
        os.close(port)


def _open_files(pid):
    try:
        return os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []


def test_a_missing_image_is_one_line(run_cli, tmp_path):
    up = run_cli("bench", "up", "--board-type", PICO, "--emulate", env={IMAGES_ENV: str(tmp_path / "none")})
    assert up.returncode != 0
    assert up.stderr.strip().splitlines() == [
        f"safebench: no MicroPython image for the emulated Pico at {tmp_path / 'none'}: give --firmware, or put "
        "the v1.28.0 image there: python -m safebench_simulator.rp2040.images fetch (or seed DIR)"]


def test_emulate_needs_a_board_type(run_cli):
    up = run_cli("bench", "up", "--emulate")
    assert up.returncode != 0
    assert up.stderr.strip().splitlines() == [
        "safebench: --emulate needs --board-type (pico_waveshare_sim7080g), and --board-type needs --emulate"]
    heap = run_cli("bench", "up", "--board-type", PICO, "--emulate", "--heap", "64K")
    assert heap.returncode == 1 and heap.stderr.strip().splitlines() == [
        "safebench: an emulated Pico has the heap its MicroPython image gives it: no heap for it"]


def _mpremote(port, *args):
    out = subprocess.run([sys.executable, "-m", "mpremote", "connect", port, *args], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.timeout(120)
def test_flash_writes_a_uf2_through_the_emulated_bootsel_drive(run_cli, tmp_path, no_leftovers):
    """`flash` reboots the Pico into its boot ROM (machine.bootloader()), finds its RPI-RP2 drive in the board's
    folder and copies the image there; the drive writes it into flash, keeping littlefs, and the Pico reboots."""
    up = run_cli("bench", "up", "--board-type", PICO, "--emulate", "--json", env={IMAGES_ENV: IMAGES})
    try:
        assert up.returncode == 0, up.stderr
        board = json.loads(up.stdout)["boards"][0]
        home = Path(board["flash"]).parent
        note = tmp_path / "note.txt"
        note.write_text("written before the flash\n")
        _mpremote(board["port"], "fs", "cp", str(note), ":note.txt")
        damaged = bytearray(Path(V1_22).read_bytes())
        damaged[100 * 512 + 508] ^= 0xFF  # block 100's end magic
        (tmp_path / "damaged.uf2").write_bytes(damaged)

        refused = run_cli("flash", "--port", board["device"], "--image", str(tmp_path / "damaged.uf2"), "--no-deploy")
        assert refused.returncode == 1
        assert refused.stderr.strip().splitlines() == ["safebench: damaged.uf2: not a UF2 image (bad magic in block 100)"]
        assert "v1.28.0" in _mpremote(board["port"], "exec", "import sys; print(sys.version)")

        flashed = run_cli("flash", "--port", board["port"], "--image", V1_22, "--no-deploy", "--json")
        assert flashed.returncode == 0, flashed.stderr
        assert json.loads(flashed.stdout)["volume"] == str(home / "RPI-RP2")
        out = _mpremote(board["port"], "exec", "import sys; print(sys.version); print(open('note.txt').read())")
        assert "MicroPython v1.22.0" in out and "written before the flash" in out
        assert not (home / "RPI-RP2").exists()  # the drive went with the reboot
        assert "(RPI_PICO-20231227-v1.22.0.uf2)" in run_cli("bench", "status").stdout
    finally:
        run_cli("bench", "down")
    again = run_cli("bench", "up", "--board-type", PICO, "--emulate", "--json", env={IMAGES_ENV: IMAGES})
    try:
        assert again.returncode == 0, again.stderr
        board = json.loads(again.stdout)["boards"][0]
        assert os.path.basename(board["firmware"]) == os.path.basename(V1_22)  # the flash's record followed it
        assert "v1.22.0" in _mpremote(board["port"], "exec", "import sys; print(sys.version)")
    finally:
        run_cli("bench", "down")
