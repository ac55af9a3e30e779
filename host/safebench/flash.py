"""Putting MicroPython itself on a real board: esptool for the ESP32 family, a .uf2 copy for RP2 boards.

The image decides how: an ESP32 `.bin` carries its chip in its header (so the chip and the flash
offset come from the image, and esptool refuses a board with another chip); a `.uf2` carries a
family ID. A Pico running MicroPython is rebooted into its BOOTSEL drive first, and after either kind
of flash the board's port is waited for by USB serial number, since native USB re-enumerates.
"""

import os
import re
import struct
import sys
import time
from pathlib import Path

from . import tool_lines
from . import usb_boards as boards
from .board_definitions import BOARD_CHIPS, chip_family
from .errors import FlashError

ESP_IMAGE_MAGIC = 0xE9
UF2_BLOCK = 512
UF2_MAGICS = (0x0A324655, 0x9E5D5157)  # "UF2\n" and the second start magic
UF2_MAGIC_END = 0x0AB16F30
UF2_FAMILY_FLAG = 0x2000
UF2_FAMILIES = {0xE48BFF56: "rp2040", 0xE48BFF59: "rp2350", 0xE48BFF5A: "rp2350", 0xE48BFF5B: "rp2350"}
UF2_BOARD_IDS = ("RPI-RP2", "RP2040", "RP2350")  # in INFO_UF2.TXT of the RP2 boot ROM's drive
UF2_ROOTS_ENV = "SAFEBENCH_UF2_ROOTS"  # where to look for the drive instead of /media, /run/media, /mnt, mounts
DEFAULT_UF2_ROOTS = ("/media", "/run/media", "/mnt")
COPY_CHUNK = 16 * 1024


# ---- what the image is ---------------------------------------------------------------------------

def esp_image_chip(header):
    """The esptool chip name ("esp32", "esp32s3", ...) an ESP-IDF image header was built for."""
    from esptool.targets import CHIP_DEFS

    if len(header) < 24 or header[0] != ESP_IMAGE_MAGIC:
        raise FlashError("not an ESP32 firmware image (no 0xE9 image header)")
    chip_id = struct.unpack_from("<H", header, 12)[0]
    for name, chip in CHIP_DEFS.items():
        if getattr(chip, "IMAGE_CHIP_ID", None) == chip_id:
            return name
    raise FlashError(f"the image is for an ESP chip esptool does not know (chip ID {chip_id})")


def esp_flash_offset(chip):
    """Where a merged MicroPython image (bootloader first) goes: 0x1000 on ESP32/S2, 0x0 on S3/C3/C6, ..."""
    from esptool.targets import CHIP_DEFS

    if chip not in CHIP_DEFS:
        raise FlashError(f"unknown ESP chip {chip!r}")
    return CHIP_DEFS[chip].BOOTLOADER_FLASH_OFFSET


def uf2_family(data):
    """The chip a .uf2 image is for ("rp2040", "rp2350"), after checking every block is well formed."""
    if not data or len(data) % UF2_BLOCK:
        raise FlashError(f"not a UF2 image ({len(data)} bytes is not a whole number of 512-byte blocks)")
    families = set()
    for off in range(0, len(data), UF2_BLOCK):
        m0, m1, flags, _, _, _, _, family = struct.unpack_from("<8I", data, off)
        end = struct.unpack_from("<I", data, off + UF2_BLOCK - 4)[0]
        if (m0, m1, end) != (*UF2_MAGICS, UF2_MAGIC_END):
            raise FlashError(f"not a UF2 image (bad magic in block {off // UF2_BLOCK})")
        if flags & UF2_FAMILY_FLAG:
            families.add(family)
    chips = {UF2_FAMILIES.get(f, f"family 0x{f:08X}") for f in families} or {"unknown"}
    if len(chips) > 1 and not chips <= {"rp2350"}:
        raise FlashError(f"the UF2 image mixes families: {', '.join(sorted(chips))}")
    return chips.pop()


def image_kind(path):
    """("esp", chip) or ("uf2", chip) for the image at `path`, from its suffix and checked in its bytes."""
    path = Path(path)
    if not path.is_file():
        raise FlashError(f"no image at {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".bin":
            with open(path, "rb") as f:
                return "esp", esp_image_chip(f.read(24))
        if suffix == ".uf2":
            return "uf2", uf2_family(path.read_bytes())
    except FlashError as e:
        raise FlashError(f"{path.name}: {e}") from None
    raise FlashError(f"{path.name}: give a .bin (ESP32, esptool) or a .uf2 (RP2040 BOOTSEL drive) image")


def check_board(chip, board_type=None, port_record=None):
    """Refuse an image built for another chip than the board's (from its type, else its USB identity)."""
    if chip == "unknown":  # a UF2 without family IDs: only an RP2 boot ROM takes one
        chip = "rp2040"
    want = chip_family(chip) or chip
    board_chip = BOARD_CHIPS.get(board_type)
    if board_chip == "unix":
        raise FlashError("the simulated board runs the unix port: there is nothing to flash (use deploy)")
    if board_chip and board_chip != chip:  # an RP2350 image on an RP2040 is ignored by its boot ROM
        raise FlashError(f"wrong image for {board_type}: the image is for {chip}, the board has an {board_chip}")
    if port_record is not None and not board_chip:
        family = boards.classify(port_record.vid, port_record.pid)[0]
        if family in ("esp32", "rp2") and family != want:
            raise FlashError(f"wrong image for {port_record.device}: the image is for {chip}, "
                             f"the port is a {boards.classify(port_record.vid, port_record.pid)[1]}")


# ---- progress ----------------------------------------------------------------------------------

def percent(progress, label):
    """fraction -> `progress("<label>: 42%")`, once per whole percent; None without `progress`."""
    if not progress:
        return None
    shown = [-1]

    def update(fraction):
        pct = max(0, min(100, int(fraction * 100)))
        if pct != shown[0]:
            shown[0] = pct
            progress(f"{label}: {pct}%")
    return update


# ---- ESP32: esptool ------------------------------------------------------------------------------

PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*%")


def esptool_argv(port, chip, image, offset=None, erase=False, connect_attempts=None):
    """The esptool command line: the chip from the image (esptool checks the board has it)."""
    offset = esp_flash_offset(chip) if offset is None else offset
    argv = [sys.executable, "-m", "esptool", "--chip", chip, "--port", port]
    if connect_attempts:
        argv += ["--connect-attempts", str(connect_attempts)]
    argv += ["write-flash", *(["--erase-all"] if erase else []), f"0x{offset:x}", str(image)]
    return argv


def esptool_error(output):
    """The one line of esptool's output that says why it failed."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if "fatal error occurred:" in line:
            return line.split("fatal error occurred:", 1)[1].strip()
    for line in reversed(lines):
        if line.lower().startswith("error"):
            return re.sub(r"^error:?\s*", "", line, flags=re.I)
    return lines[-1] if lines else "no output"


def run_esptool(argv, progress=None, timeout=300.0):
    """Run esptool, turning its progress lines into `progress(fraction)`; raises FlashError with its error line."""
    def on_line(line):
        m = PERCENT.search(line)
        if m and progress and "Writing" in line:
            progress(float(m.group(1)) / 100)

    done = tool_lines.run(argv, on_line, timeout, env={"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"})
    if done.timed_out:
        raise FlashError(f"esptool did not finish within {timeout:g} s")
    output = "\n".join(done.lines)
    if done.returncode:
        raise FlashError(f"esptool failed on {argv[argv.index('--port') + 1]}: {esptool_error(output)}")
    return output


def flash_esp(port, image, chip, offset=None, erase=False, progress=None, connect_attempts=None):
    argv = esptool_argv(port, chip, image, offset, erase, connect_attempts)
    run_esptool(argv, progress)
    return {"tool": "esptool", "chip": chip, "offset": f"0x{esp_flash_offset(chip) if offset is None else offset:x}"}


# ---- RP2: the BOOTSEL drive ----------------------------------------------------------------------

def uf2_roots():
    env = os.environ.get(UF2_ROOTS_ENV)
    return [r for r in env.split(os.pathsep) if r] if env else None


def _mount_points():
    try:
        with open("/proc/mounts") as f:
            return [line.split()[1].replace("\\040", " ") for line in f if len(line.split()) > 2]
    except OSError:
        return []


def is_uf2_volume(path):
    """True if `path` is an RP2 boot ROM's drive: INFO_UF2.TXT naming an RP2 board."""
    try:
        info = (Path(path) / "INFO_UF2.TXT").read_text(errors="replace")
    except OSError:
        return False
    return any(board_id in info for board_id in UF2_BOARD_IDS)


def find_uf2_volume(roots=None):
    """The mounted RP2 BOOTSEL drive, or None. Looks in `roots` (default: $SAFEBENCH_UF2_ROOTS, else
    /media, /run/media and /mnt two levels deep, and every mount point)."""
    roots = roots if roots is not None else uf2_roots()
    candidates = []
    for root in roots if roots is not None else DEFAULT_UF2_ROOTS:
        root = Path(root)
        candidates += [root, *_children(root), *(g for c in _children(root) for g in _children(c))]
    if roots is None:
        candidates += [Path(m) for m in _mount_points()]
    for c in candidates:
        if is_uf2_volume(c):
            return c
    return None


def _children(path):
    try:
        return [p for p in path.iterdir() if p.is_dir()]
    except OSError:
        return []


def wait_for_uf2_volume(timeout, roots=None):
    deadline = time.monotonic() + timeout
    while True:
        volume = find_uf2_volume(roots)
        if volume:
            return volume
        if time.monotonic() >= deadline:
            raise FlashError(f"no RPI-RP2 drive appeared within {timeout:g} s: is it mounted? (mount it, e.g. "
                             f"`udisksctl mount -b /dev/sdX1`, or give --volume DIR)")
        time.sleep(0.2)


def wait_for_uf2_volume_to_go(volume, timeout):
    """Until the boot ROM, having every block, leaves its drive to reboot into the new image."""
    deadline = time.monotonic() + timeout
    while is_uf2_volume(volume):
        if time.monotonic() >= deadline:
            raise FlashError(f"the board did not take the image: its RPI-RP2 drive at {volume} is still there "
                             f"after {timeout:g} s")
        time.sleep(0.1)


def copy_uf2(image, volume, progress=None):
    """Copy the image onto the drive; the boot ROM flashes and reboots once it has the last block."""
    data = Path(image).read_bytes()
    dst = Path(volume) / Path(image).name
    written = 0
    try:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as e:
        raise FlashError(f"cannot write to the RPI-RP2 drive at {volume}: {e.strerror}") from None
    try:
        while written < len(data):
            written += os.write(fd, data[written:written + COPY_CHUNK])
            if progress:
                progress(written / len(data))
        os.fsync(fd)
    except OSError as e:
        # The boot ROM drops off the bus once it has every block; an error after that is the reboot.
        if written < len(data) or is_uf2_volume(volume):
            raise FlashError(f"copying to the RPI-RP2 drive failed after {written} bytes: {e.strerror}") from None
    finally:
        _close_quietly(fd)
    return written


def _close_quietly(fd):
    try:
        os.close(fd)
    except OSError:
        pass  # the drive is gone: the board is rebooting into the new firmware


def enter_bootsel(port):
    """Reboot a Pico running MicroPython into its boot ROM's drive (machine.bootloader() via mpremote)."""
    boards.mpremote(port, "bootloader")


def flash_uf2(port, image, volume=None, timeout=30.0, progress=None, lister=None, roots=None, bootsel=enter_bootsel):
    """BOOTSEL (via `bootsel`, if no drive is mounted yet), copy, wait for the port; returns a report."""
    record = boards.port_info(port, lister) if port else None
    before = {p.device for p in (lister or boards.comports)()}
    rebooted = False
    if volume is None:
        volume = find_uf2_volume(roots)
    if volume is None:
        if not port:
            raise FlashError("no RPI-RP2 drive is mounted: hold BOOTSEL while plugging the Pico in, or give --port")
        bootsel(port)
        rebooted = True
        volume = wait_for_uf2_volume(timeout, roots)
    elif not is_uf2_volume(volume):
        raise FlashError(f"{volume} is not an RPI-RP2 drive (no INFO_UF2.TXT naming an RP2 board)")
    size = copy_uf2(image, volume, progress)
    serial_number = record.serial_number if record else None
    if serial_number:
        back = boards.wait_for_port(serial_number=serial_number, timeout=timeout, lister=lister)
    elif port and not record:  # no USB port (in BOOTSEL already, or the emulated Pico's pty): its path
        if rebooted:  # a pty stays while the board is in BOOTSEL: the drive going says it took the image
            wait_for_uf2_volume_to_go(volume, timeout)
        back = boards.wait_for_port(path=port, timeout=timeout)
    else:
        back = boards.wait_for_port(timeout=timeout, lister=lister, exclude=before - {port},
                                    match=lambda p: boards.classify(p.vid, p.pid)[0] == "rp2")
    return {"tool": "uf2", "volume": str(volume), "bytes": size, "port": back}


# ---- the command ---------------------------------------------------------------------------------

def flash(port, image, board_type=None, erase=False, offset=None, volume=None, timeout=30.0, progress=None,
          lister=None, connect_attempts=None, **uf2_options):
    """Flash `image` to the board on `port`; returns what was done and the board's port afterwards.
    `progress(text)` hears how far the writing is ("flashing fw.bin: 42%")."""
    kind, chip = image_kind(image)
    record = boards.port_info(port, lister) if port else None
    check_board(chip, board_type, record)
    bar = percent(progress, f"flashing {Path(image).name}")
    if kind == "esp":
        if not port:
            raise FlashError("flashing an ESP32 needs --port or --board")
        if volume:
            raise FlashError("--volume is for .uf2 images")
        res = flash_esp(port, image, chip, offset, erase, bar, connect_attempts)
        serial_number = record.serial_number if record else None
        res["port"] = boards.wait_for_port(serial_number=serial_number, path=port, timeout=timeout,
                                           vanish=0.5 if record and record.vid not in boards.BRIDGE_VIDS else 0,
                                           lister=lister)
    else:
        if erase or offset is not None:
            raise FlashError("--erase and --offset are for ESP32 .bin images; a .uf2 says where it goes")
        res = flash_uf2(port, image, volume, timeout, bar, lister, **uf2_options)
    return {"image": str(image), "chip": chip, **res}
