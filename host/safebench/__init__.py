"""safebench: the IoT SAFE SIM as a root of trust for MicroPython boards, and the rig that tests it."""

from pathlib import Path

__version__ = "0.1.0"

# The firmware and board definitions deployed to boards live beside the host package in the repo.
REPO = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = REPO / "firmware"
BOARDS_DIR = REPO / "boards"
