# LilyGO T-SIM7080G-S3: ESP32-S3 with an on-board SIM7080G whose supply comes from an AXP2101 PMU.
# The modem rail (DC3, 3.0 V) and the supply of the board's level converter between ESP32 and modem
# (BLDO1, 3.3 V) must be switched on over I2C before the modem can power up or be heard.
from board_common import open_uart, power_on

NAME = "lilygo-t-sim7080g-s3"
MODEM = "simcom"
MODEM_BAUD = 115200
_UART, _TX, _RX = 1, 5, 4
_PWRKEY, _PWRKEY_ACTIVE, _PWRKEY_MS, _BOOT_MS = 41, 1, 1200, 10000
_PMU_SDA, _PMU_SCL, _PMU_ADDR = 15, 7, 0x34
_AXP_DC_ENABLE, _AXP_DC3_VOLTAGE, _DC3_BIT, _DC3_3V0 = 0x80, 0x84, 0x04, 102  # 1.6 V + 14 x 100 mV
_AXP_LDO_ENABLE, _AXP_BLDO1_VOLTAGE, _BLDO1_BIT, _BLDO1_3V3 = 0x90, 0x96, 0x10, 28  # 0.5 V + 28 x 100 mV


def modem_uart():
    return open_uart(_UART, MODEM_BAUD, _TX, _RX)


def _modem_rail_on():
    from machine import I2C, Pin

    i2c = I2C(0, sda=Pin(_PMU_SDA), scl=Pin(_PMU_SCL), freq=400000)
    for voltage, level, enable, bit in ((_AXP_DC3_VOLTAGE, _DC3_3V0, _AXP_DC_ENABLE, _DC3_BIT),
                                        (_AXP_BLDO1_VOLTAGE, _BLDO1_3V3, _AXP_LDO_ENABLE, _BLDO1_BIT)):
        i2c.writeto_mem(_PMU_ADDR, voltage, bytes((level,)))
        enabled = i2c.readfrom_mem(_PMU_ADDR, enable, 1)[0]
        i2c.writeto_mem(_PMU_ADDR, enable, bytes((enabled | bit,)))


def modem_power_on(uart):
    _modem_rail_on()
    power_on(uart, _PWRKEY, _PWRKEY_ACTIVE, _PWRKEY_MS, _BOOT_MS)


def read_sensor():
    import esp32

    return ("temperature", "Cel", esp32.mcu_temperature())
