# ESP32-DevKitC (ESP32-WROOM-32) wired to a Quectel BG96 breakout.
# Wiring: GPIO17 (TX2) -> modem RXD, GPIO16 (RX2) <- modem TXD, GPIO4 -> PWRKEY transistor, common GND.
from board_common import esp32_die_temperature, open_uart, power_on

NAME = "esp32-devkitc-bg96"
MODEM = "quectel"
MODEM_BAUD = 115200
_UART, _TX, _RX = 2, 17, 16
_PWRKEY, _PWRKEY_ACTIVE, _PWRKEY_MS, _BOOT_MS = 4, 1, 650, 12000  # BG96: PWRKEY low >= 500 ms
LED = 2


def modem_uart():
    return open_uart(_UART, MODEM_BAUD, _TX, _RX)


def modem_power_on(uart):
    power_on(uart, _PWRKEY, _PWRKEY_ACTIVE, _PWRKEY_MS, _BOOT_MS)


read_sensor = esp32_die_temperature
