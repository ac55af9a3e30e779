# Shared by the board definitions (the board layer is the only code that touches machine.Pin/UART).
# Deployed as lib/board_common.mpy (and frozen under the same name by firmware/manifest.py).
import time

from machine import UART


def open_uart(uart_id, baud, tx=None, rx=None):
    """The modem UART with a short read timeout: the AT channel loops to its own deadlines."""
    if tx is None:
        return UART(uart_id, baud, timeout=20, timeout_char=5)
    from machine import Pin

    return UART(uart_id, baud, tx=Pin(tx), rx=Pin(rx), timeout=20, timeout_char=5, rxbuf=1024)


def answers(uart, tries=3):
    """True if the modem answers `AT` with OK."""
    buf = bytearray(64)
    for _ in range(tries):
        while uart.any():
            uart.readinto(buf)
        uart.write(b"AT\r")
        deadline = time.ticks_add(time.ticks_ms(), 300)
        seen = b""
        while time.ticks_diff(deadline, time.ticks_ms()) > 0:
            n = uart.readinto(buf)
            if n:
                seen = (seen + bytes(buf[:n]))[-16:]
                if b"OK" in seen:
                    return True
    return False


def pulse_pwrkey(pin_no, active, pulse_ms):
    """Press the modem's PWRKEY for `pulse_ms` (`active`: the GPIO level that pulls PWRKEY low)."""
    from machine import Pin

    key = Pin(pin_no, Pin.OUT, value=1 - active)
    key.value(active)
    time.sleep_ms(pulse_ms)
    key.value(1 - active)


def power_on(uart, pin_no, active, pulse_ms, boot_ms):
    """Switch the modem on unless it already answers; raises OSError if it never does. A modem that is
    on but slow gets three tries first: a PWRKEY press that long switches a running modem off."""
    if answers(uart, 3):
        return
    pulse_pwrkey(pin_no, active, pulse_ms)
    deadline = time.ticks_add(time.ticks_ms(), boot_ms)
    while time.ticks_diff(deadline, time.ticks_ms()) > 0:
        if answers(uart, 1):
            return
    raise OSError("modem did not answer AT within %d ms of PWRKEY" % boot_ms)


def esp32_die_temperature():
    """The classic ESP32's on-die sensor (reported in Fahrenheit), in Celsius."""
    import esp32

    return ("temperature", "Cel", (esp32.raw_temperature() - 32) / 1.8)


def rp2040_die_temperature():
    """The RP2040's on-die sensor on ADC 4: 0.706 V at 27 C, -1.721 mV per degree."""
    from machine import ADC

    volts = ADC(4).read_u16() * 3.3 / 65535
    return ("temperature", "Cel", 27 - (volts - 0.706) / 0.001721)
