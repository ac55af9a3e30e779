# Simulated board: the MicroPython unix port run by `safebench bench up`.
# Its UART 1 is a pty wired to the simulated modem (or to the port given with `bench up --modem`);
# the sensor is simulated: a temperature drifting slowly with time.
import time

from machine import UART

NAME = "unix-sim"
MODEM = "generic"  # the simulated modem also speaks the quectel and simcom dialects
MODEM_UART = 1
MODEM_BAUD = 115200


def modem_uart():
    return UART(MODEM_UART, MODEM_BAUD, timeout=20, timeout_char=5)


def modem_power_on():
    pass  # the simulated modem is always powered


def read_sensor():
    return ("temperature", "Cel", 20.0 + (time.time() % 600) / 100)
