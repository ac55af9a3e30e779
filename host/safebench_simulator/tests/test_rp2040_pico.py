"""The emulated Pico (rp2040js + official MicroPython images) behind a pty that behaves like /dev/ttyACM*.

The images are not part of the repository: they are in the images folder (safebench_simulator.rp2040.images:
$SAFEBENCH_RP2040_IMAGES, else the cache, which `.ci/run` seeds from ../shared/emulation/rp2040/).
"""

import json
import signal
import subprocess
import sys
import time

import pytest
import serial

from safebench_simulator.rp2040 import images
from safebench_simulator.rp2040.pico import harness_missing

IMAGES = images.folder()
BOOTROM = IMAGES / images.BOOTROM
ARMV6M = 4  # mpy's native architecture number for armv6m
# image -> (MicroPython version, .mpy sub-version)
FIRMWARE = {"RPI_PICO-20231227-v1.22.0.uf2": ((1, 22, 0), 2), "RPI_PICO-v1.28.0.uf2": ((1, 28, 0), 3)}

pytestmark = pytest.mark.skipif(
    harness_missing() is not None or not BOOTROM.exists(),
    reason=harness_missing() or f"no RP2040 images in {IMAGES} (python -m safebench_simulator.rp2040.images seed DIR)")


@pytest.fixture
def start_pico(tmp_path):
    """``start_pico(firmware=None, *options)`` boots the emulated Pico on tmp_path's flash image; returns
    its port, or with options the supervisor's whole JSON line."""
    running = []

    def start_pico(firmware=None, *options):
        argv = [sys.executable, "-m", "safebench_simulator.rp2040.pico", "--bootrom", str(BOOTROM),
                "--flash", str(tmp_path / "flash.img"), *options]
        if firmware:
            argv += ["--firmware", str(IMAGES / firmware)]
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        running.append(process)
        line = process.stdout.readline()
        assert line, "the emulated Pico's supervisor exited before its port was up"
        started = json.loads(line)
        return started if options else started["port"]

    def stop_pico():
        process = running.pop()
        process.send_signal(signal.SIGTERM)
        process.wait(10)
        process.stdout.close()

    start_pico.stop = stop_pico
    yield start_pico
    while running:
        process = running.pop()
        process.kill()
        process.wait()
        process.stdout.close()


def mpremote(port, *args):
    result = subprocess.run([sys.executable, "-m", "mpremote", "connect", port, *args], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("firmware", FIRMWARE)
def test_official_image_answers_mpremote_with_its_version(start_pico, firmware):
    started = time.monotonic()
    port = start_pico(firmware)
    booted = time.monotonic() - started

    out = mpremote(port, "exec", "import sys; print(1 + 1, tuple(sys.implementation.version[:3]), "
                                 "sys.implementation._mpy)")

    version, sub_version = FIRMWARE[firmware]
    assert out.split(None, 1)[0] == "2"
    assert f"{version} {6 | sub_version << 8 | ARMV6M << 10}" in out
    assert booted < 5.0


@pytest.mark.parametrize("firmware", FIRMWARE)
def test_file_copied_in_survives_soft_reset_and_restart(start_pico, tmp_path, firmware):
    source = tmp_path / "note.txt"
    source.write_text("kept in littlefs\n")
    port = start_pico(firmware)
    mpremote(port, "fs", "cp", str(source), ":note.txt", "+", "soft-reset", "+", "fs", "ls")
    start_pico.stop()

    port = start_pico()  # from the flash image alone, as after a power cycle

    assert mpremote(port, "fs", "cat", ":note.txt") == "kept in littlefs\n"
    assert "note.txt" in mpremote(port, "fs", "ls")


def test_machine_reset_reboots_the_chip_from_its_flash(start_pico, tmp_path):
    """rp2040js leaves the watchdog's reset to its user: the harness powers a new chip up on the same flash,
    and what the client sends meanwhile waits for the new chip's USB."""
    port = start_pico("RPI_PICO-v1.28.0.uf2")
    uptime = "import time; print(time.ticks_ms())"
    mpremote(port, "exec", "open('kept', 'w').write('yes'); import time; time.sleep_ms(1500)")
    assert int(mpremote(port, "exec", uptime)) >= 1500

    mpremote(port, "exec", "--no-follow", "import machine; machine.reset()")

    assert int(mpremote(port, "exec", uptime)) < 1500
    assert mpremote(port, "fs", "cat", ":kept") == "yes"


def test_guest_sleep_lasts_its_wall_time(start_pico):
    """rp2040js skips a sleeping core straight to its next alarm; the harness holds it to the wall clock."""
    port = start_pico("RPI_PICO-v1.28.0.uf2")
    started = time.monotonic()
    out = mpremote(port, "exec", "import time; t = time.ticks_ms(); time.sleep_ms(600); "
                                 "print(time.ticks_diff(time.ticks_ms(), t))")
    elapsed = time.monotonic() - started

    assert 600 <= int(out) <= 601  # ticks_ms may tick once more while the guest wakes up
    assert elapsed >= 0.6


def test_bytes_written_faster_than_the_guest_reads_are_not_lost(start_pico):
    """A 24 KB raw-REPL script in one write: a real Pico's USB NAKs what it cannot take yet."""
    port = start_pico("RPI_PICO-v1.28.0.uf2")
    text = "".join(chr(0x30 + i % 43) for i in range(24000))
    # 60 s: the guest parses 24 KB at emulation speed, on a machine whose cores two emulated HIL sessions share
    with serial.Serial(port, timeout=60) as usb:
        usb.write(b"\r\x03\x03\x01")
        assert usb.read_until(b"raw REPL; CTRL-B to exit\r\n>").endswith(b">")
        usb.write(f"s = {text!r}\nprint(len(s), sum(s.encode()))\n\x04".encode())
        answer = usb.read_until(b"\x04>")

    assert answer == f"OK{len(text)} {sum(text.encode())}\r\n\x04\x04>".encode()


UART0 = "from machine import UART, Pin\nimport time\nu = UART(0, {baud}, tx=Pin(0), rx=Pin(1), txbuf=2048, timeout=3000)\n"


@pytest.mark.parametrize("firmware", FIRMWARE)
def test_uart0_bytes_cross_a_pty_both_ways(start_pico, firmware):
    started = start_pico(firmware, "--uart0", "pty")
    script = UART0.format(baud=115200) + "u.write(b'ping\\n')\nprint(u.readline())"
    with serial.Serial(started["uart0"], timeout=10) as line:
        with subprocess.Popen([sys.executable, "-m", "mpremote", "connect", started["port"], "exec", script],
                              stdout=subprocess.PIPE, text=True) as client:
            try:
                assert line.read_until(b"\n") == b"ping\n"
                line.write(b"pong\n")
                out, _ = client.communicate(timeout=20)
            finally:
                client.kill()

    assert out.strip() == "b'pong\\n'"


@pytest.mark.parametrize("baud, count", [(115200, 1000), (9600, 100)])
def test_uart_sends_at_its_baud_rate_in_guest_time(start_pico, baud, count):
    """8N1: 10 bit times a byte, so the guest's own clock sees 1000 bytes at 115200 take 86.8 ms."""
    started = start_pico("RPI_PICO-v1.28.0.uf2", "--uart0", "pty")
    script = UART0.format(baud=baud) + (f"t = time.ticks_us()\nu.write(bytes({count}))\nu.flush()\n"
                                        "print(time.ticks_diff(time.ticks_us(), t))")
    with serial.Serial(started["uart0"], timeout=10) as line:
        out = mpremote(started["port"], "exec", script)
        assert line.read(count) == bytes(count)

    assert int(out) == pytest.approx(count * 10 / baud * 1e6, rel=0.03)


def _wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_bootsel_drive_takes_only_whole_rp2040_images(start_pico, tmp_path):
    """machine.bootloader() (the ROM's reset_usb_boot) shows the RPI-RP2 drive beside the flash image. Blocks for
    another chip are ignored, as by the boot ROM; a whole RP2040 image is written over the old one, its
    littlefs kept, and the Pico reboots into it."""
    port = start_pico("RPI_PICO-20231227-v1.22.0.uf2")
    mpremote(port, "exec", "open('kept', 'w').write('yes')")
    drive = tmp_path / "RPI-RP2"

    mpremote(port, "bootloader")
    _wait_until((drive / "INFO_UF2.TXT").exists)
    assert "Board-ID: RPI-RP2\n" in (drive / "INFO_UF2.TXT").read_text()
    image = (IMAGES / "RPI_PICO-v1.28.0.uf2").read_bytes()
    rp2350 = bytearray(image)
    for block in range(0, len(image), 512):
        rp2350[block + 28:block + 32] = (0xE48BFF59).to_bytes(4, "little")  # the RP2350's family ID
    (drive / "rp2350.uf2").write_bytes(rp2350)
    time.sleep(0.5)
    assert drive.is_dir()
    (drive / "pico.uf2").write_bytes(image)
    _wait_until(lambda: not drive.exists())

    out = mpremote(port, "exec", "import sys; print(sys.version); print(open('kept').read())")
    assert "MicroPython v1.28.0" in out and "yes" in out
    assert (tmp_path / "flash.img.firmware").read_text() == f"{tmp_path / 'flashed' / 'pico.uf2'}\n"
