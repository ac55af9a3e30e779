"""Flashing MicroPython: image checks, esptool (the real one, against a pty that is no ESP32), and the
UF2 path end to end against a fake BOOTSEL drive and a port that comes back late."""

import os
import pty
import struct
import sys
import threading
import time

import pytest

from safebench import flash
from safebench.errors import FlashError
from safebench.usb_boards import UsbPort

PICO_SERIAL = "E66038B7138A2F2D"
INFO_UF2 = "UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n"


def esp_image(chip_id, size=4096):
    """An ESP-IDF image header (magic, segments, SPI mode/size, entry, extended header with the chip ID)."""
    header = struct.pack("<BBBBI", 0xE9, 3, 2, 0x20, 0x40080000) + bytes(4) + struct.pack("<H", chip_id) + bytes(10)
    return header + bytes(size - len(header))


def uf2_image(blocks=64, family=0xE48BFF56):
    out = bytearray()
    for i in range(blocks):
        head = struct.pack("<8I", 0x0A324655, 0x9E5D5157, 0x2000, 0x10000000 + 256 * i, 256, i, blocks, family)
        out += head + bytes([i & 0xFF]) * 256 + bytes(476 - 256) + struct.pack("<I", 0x0AB16F30)
    return bytes(out)


# ---- what the image is ---------------------------------------------------------------------------

@pytest.mark.parametrize("chip_id, chip, offset", [(0, "esp32", 0x1000), (2, "esp32s2", 0x1000),
                                                   (9, "esp32s3", 0x0), (5, "esp32c3", 0x0), (13, "esp32c6", 0x0)])
def test_esp_chip_and_offset_from_the_image(chip_id, chip, offset):
    assert flash.esp_image_chip(esp_image(chip_id)) == chip
    assert flash.esp_flash_offset(chip) == offset


def test_esp_image_refused_when_not_one():
    with pytest.raises(FlashError, match="no 0xE9 image header"):
        flash.esp_image_chip(b"\x00" * 64)
    with pytest.raises(FlashError, match="chip ID 999"):
        flash.esp_image_chip(esp_image(999))


def test_uf2_family_and_damage():
    assert flash.uf2_family(uf2_image(3)) == "rp2040"
    assert flash.uf2_family(uf2_image(3, family=0xE48BFF59)) == "rp2350"
    with pytest.raises(FlashError, match="whole number of 512-byte blocks"):
        flash.uf2_family(uf2_image(3)[:-1])
    bad = bytearray(uf2_image(3))
    bad[512 + 511] ^= 1  # end magic of block 1
    with pytest.raises(FlashError, match="bad magic in block 1"):
        flash.uf2_family(bytes(bad))
    with pytest.raises(FlashError, match="mixes families"):
        flash.uf2_family(uf2_image(1) + uf2_image(1, family=0xC47E5767))


def test_image_kind_by_suffix(tmp_path):
    (tmp_path / "fw.bin").write_bytes(esp_image(9))
    (tmp_path / "fw.uf2").write_bytes(uf2_image(2))
    (tmp_path / "fw.hex").write_text(":00000001FF\n")
    (tmp_path / "pico.bin").write_bytes(uf2_image(2))
    assert flash.image_kind(tmp_path / "fw.bin") == ("esp", "esp32s3")
    assert flash.image_kind(tmp_path / "fw.uf2") == ("uf2", "rp2040")
    with pytest.raises(FlashError, match=r"fw.hex: give a .bin \(ESP32, esptool\) or a .uf2"):
        flash.image_kind(tmp_path / "fw.hex")
    with pytest.raises(FlashError, match="pico.bin: not an ESP32 firmware image"):
        flash.image_kind(tmp_path / "pico.bin")
    with pytest.raises(FlashError, match="no image at"):
        flash.image_kind(tmp_path / "missing.uf2")


def test_wrong_image_for_the_board():
    with pytest.raises(FlashError, match="wrong image for picow_bg95: the image is for esp32"):
        flash.check_board("esp32", "picow_bg95")
    with pytest.raises(FlashError, match="the image is for esp32, the board has an esp32s3"):
        flash.check_board("esp32", "lilygo_t_sim7080g_s3")
    with pytest.raises(FlashError, match="wrong image for esp32_devkitc_bg96: the image is for rp2040"):
        flash.check_board("rp2040", "esp32_devkitc_bg96")
    with pytest.raises(FlashError, match="wrong image for picow_bg95: the image is for rp2350, the board has an rp2040"):
        flash.check_board("rp2350", "picow_bg95")
    with pytest.raises(FlashError, match="nothing to flash"):
        flash.check_board("rp2040", "unix_sim")
    cp210x = UsbPort("/dev/ttyUSB0", 0x10C4, 0xEA60, "0001")
    with pytest.raises(FlashError, match="/dev/ttyUSB0: the image is for rp2040, the port is a Silicon Labs CP210x"):
        flash.check_board("rp2040", None, cp210x)
    flash.check_board("esp32s3", "lilygo_t_sim7080g_s3")
    flash.check_board("esp32", None, cp210x)
    flash.check_board("rp2040", "pico_waveshare_sim7080g", UsbPort("/dev/ttyACM0", 0x2E8A, 0x0005, PICO_SERIAL))


# ---- esptool -------------------------------------------------------------------------------------

def test_esptool_command_line():
    argv = flash.esptool_argv("/dev/ttyUSB0", "esp32", "fw.bin")
    assert argv[1:] == ["-m", "esptool", "--chip", "esp32", "--port", "/dev/ttyUSB0", "write-flash", "0x1000", "fw.bin"]
    argv = flash.esptool_argv("/dev/ttyACM0", "esp32s3", "fw.bin", erase=True, connect_attempts=1)
    assert argv[3:] == ["--chip", "esp32s3", "--port", "/dev/ttyACM0", "--connect-attempts", "1",
                        "write-flash", "--erase-all", "0x0", "fw.bin"]
    assert flash.esptool_argv("p", "esp32", "fw.bin", offset=0x10000)[-2] == "0x10000"


def test_esptool_error_line():
    out = ("esptool v5.6.0\nConnecting......\nWARNING: Chip was NOT reset.\n"
           "ERROR: A fatal error occurred: Failed to connect to ESP32: No serial data received.\n"
           "For troubleshooting steps visit: https://docs.espressif.com\n")
    assert flash.esptool_error(out) == "Failed to connect to ESP32: No serial data received."
    assert flash.esptool_error("usage: esptool\nError: No such option: --bogus\n") == "No such option: --bogus"
    assert flash.esptool_error("") == "no output"


@pytest.mark.timeout(30)
def test_esptool_progress_becomes_whole_percents():
    script = ("import sys\nfor p in (0.0, 25.0, 25.4, 50.0, 75.0, 100.0):\n"
              "    print(f'Writing at 0x{0x1000 + int(p) * 64:08x} [=====>   ] {p:5.1f}% 1.0MB/2.0MB')\n")
    said = []
    flash.run_esptool([sys.executable, "-c", script, "--port", "x"], flash.percent(said.append, "flashing fw.bin"))
    assert said == [f"flashing fw.bin: {pct}%" for pct in (0, 25, 50, 75, 100)]  # 25.4 is still 25


@pytest.mark.timeout(60)
def test_real_esptool_on_a_port_that_is_no_esp32(tmp_path):
    image = tmp_path / "ESP32_GENERIC.bin"
    image.write_bytes(esp_image(0))
    master, slave = pty.openpty()
    port = os.ttyname(slave)
    try:
        start = time.monotonic()
        with pytest.raises(FlashError) as err:
            flash.flash(port, image, connect_attempts=1)
        assert time.monotonic() - start < 20
    finally:
        os.close(master)
        os.close(slave)
    message = str(err.value)
    assert message == f"esptool failed on {port}: Failed to connect to ESP32: No serial data received."
    assert "\n" not in message


# ---- RP2: the BOOTSEL drive ----------------------------------------------------------------------

class FakePico:
    """A Pico on a fake bus: its MicroPython port, its BOOTSEL drive under `media`, and a pty that
    stands in for its port when it comes back (a symlink made only after a delay)."""

    def __init__(self, tmp_path, comeback_delay=0.6):
        self.media = tmp_path / "media"
        self.drive = self.media / "pi" / "RPI-RP2"
        self.link = tmp_path / "ttyACM-pico"
        self.delay = comeback_delay
        self.present = True
        self.master = self.slave = None
        self.threads = []
        self.media.mkdir()
        self.link.symlink_to("/dev/null")  # the port while MicroPython runs (never opened here)

    def lister(self):
        return [UsbPort(str(self.link), 0x2E8A, 0x0005, PICO_SERIAL, "Board in FS mode")] if self.present else []

    def bootsel(self, port):
        assert port == str(self.link)
        self.present = False
        self.link.unlink()
        self._later(0.3, self._mount)

    def _mount(self):
        self.drive.mkdir(parents=True)
        (self.drive / "INFO_UF2.TXT").write_text(INFO_UF2)
        self._later(0.05, self._watch_copy)

    def _watch_copy(self):
        # The boot ROM reboots once the whole image is in: the drive goes, the port comes back later.
        while not any(p.suffix == ".uf2" and p.stat().st_size for p in self.drive.iterdir()):
            time.sleep(0.02)
        self.copied = next(p for p in self.drive.iterdir() if p.suffix == ".uf2")
        time.sleep(self.delay)
        self.master, self.slave = pty.openpty()
        self.link.symlink_to(os.ttyname(self.slave))
        self.present = True

    def _later(self, delay, fn):
        t = threading.Timer(delay, fn)
        t.daemon = True
        self.threads.append(t)
        t.start()

    def close(self):
        for t in self.threads:
            t.cancel()
        for fd in (self.master, self.slave):
            if fd is not None:
                os.close(fd)


@pytest.fixture
def pico(tmp_path, monkeypatch):
    p = FakePico(tmp_path)
    monkeypatch.setenv(flash.UF2_ROOTS_ENV, str(p.media))
    yield p
    p.close()


@pytest.mark.timeout(30)
def test_uf2_flash_end_to_end(pico, tmp_path):
    image = tmp_path / "RPI_PICO_W-v1.29.0.uf2"
    image.write_bytes(uf2_image(200))
    said = []
    start = time.monotonic()
    res = flash.flash(str(pico.link), image, "picow_bg95", timeout=10, progress=said.append, lister=pico.lister,
                      bootsel=pico.bootsel)
    assert time.monotonic() - start >= pico.delay
    assert res == {"image": str(image), "chip": "rp2040", "tool": "uf2", "volume": str(pico.drive),
                   "bytes": 200 * 512, "port": str(pico.link)}
    assert pico.copied.read_bytes() == image.read_bytes()
    assert os.path.realpath(res["port"]) == os.ttyname(pico.slave)  # the port that came back, not the old one
    assert said[-1] == f"flashing {image.name}: 100%" and len(said) == len(set(said)) > 1  # chunk by chunk


@pytest.mark.timeout(30)
def test_uf2_volume_given_and_port_back_by_path(tmp_path, monkeypatch):
    """An already-mounted drive given with --volume; a board without a USB record is waited for by path."""
    monkeypatch.setenv(flash.UF2_ROOTS_ENV, str(tmp_path / "nowhere"))
    drive = tmp_path / "RPI-RP2"
    drive.mkdir()
    (drive / "INFO_UF2.TXT").write_text(INFO_UF2)
    image = tmp_path / "fw.uf2"
    image.write_bytes(uf2_image(8))
    link = tmp_path / "tty-later"
    master, slave = pty.openpty()
    timer = threading.Timer(0.5, lambda: link.symlink_to(os.ttyname(slave)))
    timer.start()
    try:
        res = flash.flash_uf2(str(link), image, volume=drive, timeout=5, lister=lambda: [])
    finally:
        timer.cancel()
        os.close(master)
        os.close(slave)
    assert res["port"] == str(link) and (drive / "fw.uf2").read_bytes() == image.read_bytes()


@pytest.mark.timeout(30)
def test_uf2_a_drive_that_stays_means_the_image_was_not_taken(tmp_path):
    """A board off USB (an emulated Pico's pty) keeps its port in BOOTSEL: only its drive going says it rebooted."""
    drive = tmp_path / "RPI-RP2"

    def bootsel(port):
        drive.mkdir()
        (drive / "INFO_UF2.TXT").write_text(INFO_UF2)

    image = tmp_path / "fw.uf2"
    image.write_bytes(uf2_image(2))
    master, slave = pty.openpty()
    try:
        with pytest.raises(FlashError, match=f"the board did not take the image: its RPI-RP2 drive at {drive} is "
                                             "still there after 0.5 s"):
            flash.flash_uf2(os.ttyname(slave), image, timeout=0.5, lister=lambda: [], roots=[tmp_path],
                            bootsel=bootsel)
    finally:
        os.close(master)
        os.close(slave)
    assert (drive / "fw.uf2").read_bytes() == image.read_bytes()


def test_uf2_drive_search(tmp_path, monkeypatch):
    media = tmp_path / "media"
    (media / "alice" / "USBSTICK").mkdir(parents=True)
    (media / "alice" / "USBSTICK" / "INFO_UF2.TXT").write_text("UF2 Bootloader\nBoard-ID: SAMD21-Feather\n")
    monkeypatch.setenv(flash.UF2_ROOTS_ENV, str(media))
    assert flash.find_uf2_volume() is None  # a UF2 drive, but not an RP2's
    (media / "alice" / "RPI-RP2").mkdir()
    (media / "alice" / "RPI-RP2" / "INFO_UF2.TXT").write_text(INFO_UF2)
    assert flash.find_uf2_volume() == media / "alice" / "RPI-RP2"
    assert flash.find_uf2_volume([tmp_path / "elsewhere"]) is None


@pytest.mark.timeout(30)
def test_uf2_errors(tmp_path, monkeypatch):
    monkeypatch.setenv(flash.UF2_ROOTS_ENV, str(tmp_path / "nowhere"))
    image = tmp_path / "fw.uf2"
    image.write_bytes(uf2_image(2))
    with pytest.raises(FlashError, match="no RPI-RP2 drive is mounted: hold BOOTSEL"):
        flash.flash_uf2(None, image, lister=lambda: [])
    with pytest.raises(FlashError, match=f"{tmp_path} is not an RPI-RP2 drive"):
        flash.flash_uf2(None, image, volume=tmp_path, lister=lambda: [])
    start = time.monotonic()
    with pytest.raises(FlashError, match=r"no RPI-RP2 drive appeared within 0.5 s: is it mounted\?"):
        flash.flash_uf2("/dev/ttyACM9", image, timeout=0.5, lister=lambda: [], bootsel=lambda port: None)
    assert 0.5 <= time.monotonic() - start < 3
    with pytest.raises(FlashError, match="--erase and --offset are for ESP32"):
        flash.flash(None, image, erase=True, lister=lambda: [])


@pytest.mark.timeout(60)
def test_cli_flash_errors(run_cli, tmp_path):
    (tmp_path / "pico.uf2").write_bytes(uf2_image(2))
    (tmp_path / "esp.bin").write_bytes(esp_image(0))
    res = run_cli("flash", "--port", "/dev/null", "--board-type", "esp32_devkitc_bg96", "--image", "pico.uf2")
    assert res.returncode == 1
    assert res.stderr == ("safebench: wrong image for esp32_devkitc_bg96: the image is for rp2040, "
                          "the board has an esp32\n")
    res = run_cli("flash", "--image", "esp.bin", "--no-deploy")
    assert res.returncode == 1 and res.stderr == "safebench: flash needs --port PORT or --board ALIAS\n"
    res = run_cli("flash", "--port", "/dev/null", "--image", "esp.bin")
    assert res.returncode == 1 and "give --board-type (to deploy the firmware after flashing) or --no-deploy" in res.stderr


@pytest.mark.timeout(30)
def test_silent_esptool_is_stopped():
    start = time.monotonic()
    with pytest.raises(FlashError, match="esptool did not finish within 0.5 s"):
        flash.run_esptool([sys.executable, "-c", "import time; time.sleep(30)", "--port", "x"], timeout=0.5)
    assert time.monotonic() - start < 5
