# Simulated board: the MicroPython unix port run by `safebench bench up`.
# Its UART 1 is a pty wired to the simulated modem (or to the port given with `bench up --modem`).
from machine import UART

NAME = "unix-sim"
MODEM_UART = 1
MODEM_BAUD = 115200


def modem_uart():
    return UART(MODEM_UART, MODEM_BAUD, timeout=20, timeout_char=5)
