"""The board definitions (`boards/*.py`, package data): which exist, the chip on each, and the name each reports."""

import re

from . import BOARDS_DIR

BOARD_COMMON = "board_common"  # shared by the board definitions, not a board itself

# The chip on each board of boards/ (a board added there without an entry here still deploys; only
# flashing and resetting then ask the USB identity instead).
BOARD_CHIPS = {
    "esp32_devkitc_bg96": "esp32",
    "esp32_devkitc_sim7080g": "esp32",
    "lilygo_t_sim7080g_s3": "esp32s3",
    "pico_waveshare_sim7080g": "rp2040",
    "picow_bg95": "rp2040",
    "unix_sim": "unix",
}

def chip_family(chip):
    """esp32 for any ESP32 chip, rp2 for RP2040/RP2350, unix for the simulated board, else None."""
    if not chip:
        return None
    if chip.startswith("esp32"):
        return "esp32"
    if chip.startswith("rp2"):
        return "rp2"
    return chip if chip == "unix" else None


def board_family(board_type):
    return chip_family(BOARD_CHIPS.get(board_type))


def board_type_for_name(name):
    """The boards/ definition whose NAME (what the firmware's `info` reports) is `name`, or None."""
    for path in sorted(BOARDS_DIR.glob("*.py")):
        m = re.search(r'^NAME\s*=\s*["\']([^"\']+)["\']', path.read_text(), re.M)
        if m and m.group(1) == name:
            return path.stem
    return None


def board_types():
    return sorted(p.stem for p in BOARDS_DIR.glob("*.py") if p.stem != BOARD_COMMON)
