# Raspberry Pi Pico with the Waveshare Pico-SIM7080G-Cat-M HAT (UART0 on GP0/GP1, PWRKEY on GP14).
from board_common import open_uart, power_on, rp2040_die_temperature

NAME = "pico-waveshare-sim7080g"
MODEM = "simcom"
MODEM_BAUD = 115200
_UART, _TX, _RX = 0, 0, 1
_PWRKEY, _PWRKEY_ACTIVE, _PWRKEY_MS, _BOOT_MS = 14, 1, 1200, 10000
LED = 25


def modem_uart():
    return open_uart(_UART, MODEM_BAUD, _TX, _RX)


def modem_power_on(uart):
    power_on(uart, _PWRKEY, _PWRKEY_ACTIVE, _PWRKEY_MS, _BOOT_MS)


read_sensor = rp2040_die_temperature
