# Freeze the firmware into a MicroPython image, so its bytecode runs from flash instead of the heap:
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/safebench/firmware/manifest.py
# The filesystem then needs only main.py and a one-line board.py naming the board, e.g.
#   from pico_waveshare_sim7080g import *
include("$(PORT_DIR)/boards/manifest.py")  # noqa: F821  the port's own frozen modules
freeze("lib")  # noqa: F821  every firmware module
freeze("../boards")  # noqa: F821  every board definition and board_common
