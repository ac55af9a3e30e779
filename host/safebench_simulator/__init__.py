"""safebench_simulator: host-side stand-ins for the hardware of the bench.

The simulated cellular modem (``modem``) answers AT commands on a pty the way a
real module's UART does; behind it sits a simulated UICC (``uicc``) carrying an
IoT SAFE applet (``iotsafe``) whose persistent memory is a JSON card image
(``card``).
"""
