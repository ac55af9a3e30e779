"""The command-line options of the simulated modem (modem.py), apart from the modem itself, so that a
program offering them (the `safebench` CLI builds every command's options at start-up) does not load
the modem, the UICC and the applet to do so."""

from __future__ import annotations

import argparse

from .dialects import DIALECTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a simulated modem: `python -m safebench_simulator.modem` takes them, and so does
    `safebench simulate modem`."""
    parser.add_argument("--card", required=True, help="card image (JSON) of the simulated SIM")
    parser.add_argument("--dialect", default="generic", choices=list(DIALECTS),
                        help="module to behave as (default generic)")
    parser.add_argument("--link", help="symlink to create to the modem's pty")
    parser.add_argument("--trace", help="append a JSON-lines trace of AT lines and APDUs to this file")
    parser.add_argument("--control", help="fault-control socket (default: <link>.ctl with --link)")
    parser.add_argument("--realtime", action="store_true",
                        help="delay replies by the modeled UART and card time")
    parser.add_argument("--port", help="serve on this serial port (opened raw, e.g. /dev/ttyUSB0) instead of a new pty")
    parser.add_argument("--baud", type=int, help="baud rate (default: the card profile's)")
