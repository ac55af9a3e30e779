# Raspberry Pi Pico W wired to a Quectel BG95 breakout.
# Wiring: GP4 (UART1 TX) -> modem RXD, GP5 (UART1 RX) <- modem TXD, GP6 -> PWRKEY transistor, common GND.
from board_common import open_uart, power_on, rp2040_die_temperature

NAME = "picow-bg95"
MODEM = "quectel"
MODEM_BAUD = 115200
_UART, _TX, _RX = 1, 4, 5
_PWRKEY, _PWRKEY_ACTIVE, _PWRKEY_MS, _BOOT_MS = 6, 1, 650, 12000  # BG95: PWRKEY low >= 500 ms
LED = "LED"  # on the Pico W the LED hangs off the wireless chip


def modem_uart():
    return open_uart(_UART, MODEM_BAUD, _TX, _RX)


def modem_power_on(uart):
    power_on(uart, _PWRKEY, _PWRKEY_ACTIVE, _PWRKEY_MS, _BOOT_MS)


read_sensor = rp2040_die_temperature
