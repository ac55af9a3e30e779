"""An emulated Raspberry Pi Pico: official MicroPython images on rp2040js (``harness.js``), supervised by
``pico``, which exposes its USB CDC as a pty that behaves like a Pico's ``/dev/ttyACM*``."""
