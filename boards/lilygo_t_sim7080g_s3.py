# LilyGO T-SIM7080G-S3: ESP32-S3 with an on-board SIM7080G whose supply comes from an AXP2101 PMU.
# The modem rail (DC3, 3.0 V) must be switched on over I2C before PWRKEY does anything.
from board_common import open_uart, power_on

NAME = "lilygo-t-sim7080g-s3"
MODEM = "simcom"
MODEM_BAUD = 115200
_UART, _TX, _RX = 1, 5, 4
_PWRKEY, _PWRKEY_ACTIVE, _PWRKEY_MS, _BOOT_MS = 41, 1, 1200, 10000
_PMU_SDA, _PMU_SCL, _PMU_ADDR = 15, 7, 0x34
_AXP_DC_ENABLE, _AXP_DC3_VOLTAGE, _DC3_BIT, _DC3_3V0 = 0x80, 0x84, 0x04, 102  # 1.6 V + 14 x 100 mV


def modem_uart():
    return open_uart(_UART, MODEM_BAUD, _TX, _RX)


def _modem_rail_on():
    from machine import I2C, Pin

    i2c = I2C(0, sda=Pin(_PMU_SDA), scl=Pin(_PMU_SCL), freq=400000)
    i2c.writeto_mem(_PMU_ADDR, _AXP_DC3_VOLTAGE, bytes((_DC3_3V0,)))
    enabled = i2c.readfrom_mem(_PMU_ADDR, _AXP_DC_ENABLE, 1)[0]
    i2c.writeto_mem(_PMU_ADDR, _AXP_DC_ENABLE, bytes((enabled | _DC3_BIT,)))


def modem_power_on(uart):
    _modem_rail_on()
    power_on(uart, _PWRKEY, _PWRKEY_ACTIVE, _PWRKEY_MS, _BOOT_MS)


def read_sensor():
    import esp32

    return ("temperature", "Cel", esp32.mcu_temperature())
