# Freeze the firmware into a MicroPython image, so its bytecode runs from flash instead of the heap:
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/safebench/firmware/manifest.py
# The filesystem then needs only main.py and a one-line board.py naming the board, e.g.
#   from pico_waveshare_sim7080g import *
# Every feature is frozen; to leave one out, drop its require() line (core stays: main.py runs on it).
include("$(PORT_DIR)/boards/manifest.py")  # the port's own frozen modules
add_library("safebench", ".")  # the feature folders beside this file, each with its manifest.py
require("core", library="safebench")
require("readings", library="safebench")
require("tls", library="safebench")
freeze("../boards")  # every board definition and board_common
