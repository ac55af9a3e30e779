# Simulated board: the MicroPython unix port run by `safebench bench up`.
# Its UART 1 is a pty wired to the simulated modem (or to the port given with `bench up --modem`);
# the sensor is simulated: a temperature drifting slowly with time.
import os
import time

from board_common import open_uart

NAME = "unix-sim"
MODEM = os.getenv("SAFEBENCH_MODEM") or "generic"  # the dialect of the modem the bench wired up
MODEM_BAUD = 115200
_UART = 1


def modem_uart():
    return open_uart(_UART, MODEM_BAUD)


def modem_power_on(uart):
    pass  # the simulated modem is always powered


def read_sensor():
    return ("temperature", "Cel", 20.0 + (time.time() % 600) / 100)
