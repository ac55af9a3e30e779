"""safebench: the IoT SAFE SIM as a root of trust for MicroPython boards, and the rig that tests it."""

from pathlib import Path

__version__ = "0.2.0"

# The firmware and board definitions deployed to boards are package data: they travel with an
# installed safebench (in a checkout these two are links to the top-level firmware/ and boards/).
FIRMWARE_DIR = Path(__file__).parent / "firmware"
BOARDS_DIR = Path(__file__).parent / "boards"
