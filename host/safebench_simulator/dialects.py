"""What differs between the modules the simulated modem can pretend to be.

``generic`` is a plain 27.007 modem that answers every ICCID spelling and has no sockets.
``quectel`` is a BG95-M3 and ``simcom`` a SIM7080G: their identification, start-up URCs,
ICCID command, APN command (see ``pdp``) and TCP socket commands (see ``sockets``). Identification strings are of the
form the modules print; the revision numbers are examples, not a particular firmware's.
"""

from __future__ import annotations

from dataclasses import dataclass

from .card import luhn_check_digit
from .sockets import QuectelSockets, SimcomSockets, SocketStack

_IMEI_BODY = "86000000000000"  # 14 digits; a test TAC, never a real device's
IMEI = _IMEI_BODY + luhn_check_digit(_IMEI_BODY)


@dataclass(frozen=True)
class Dialect:
    name: str
    manufacturer: str
    model: str
    revision: str
    identification: tuple[str, ...]  # the lines ATI prints
    startup: tuple[str, ...]  # URCs after power-up
    iccid: dict[str, str | None]  # command -> prefix of its answer (None: a bare number)
    sockets: type[SocketStack] | None = None
    pdp: tuple[str, ...] = ()  # its own APN commands beside AT+CGDCONT (``pdp``)


GENERIC = Dialect(
    name="generic",
    manufacturer="safebench",
    model="SIM-MODEM",
    revision="safebench-sim 1.0",
    identification=("safebench", "SIM-MODEM", "Revision: safebench-sim 1.0"),
    startup=("RDY", "+CPIN: READY"),
    iccid={"CCID": "+CCID", "QCCID": "+QCCID", "CICCID": "+ICCID"},
)

QUECTEL = Dialect(
    name="quectel",
    manufacturer="Quectel",
    model="BG95-M3",
    revision="BG95M3LAR02A03",
    identification=("Quectel", "BG95-M3", "Revision: BG95M3LAR02A03"),
    startup=("RDY", "+CFUN: 1", "+CPIN: READY", "+QUSIM: 1", "+QIND: SMS DONE", "APP RDY"),
    iccid={"QCCID": "+QCCID"},
    sockets=QuectelSockets,
    pdp=("QICSGP",),
)

SIMCOM = Dialect(
    name="simcom",
    manufacturer="SIMCOM INCORPORATED",
    model="SIMCOM_SIM7080G",
    revision="1951B08SIM7080",
    identification=("SIM7080 R1951.08",),
    startup=("RDY", "+CFUN: 1", "+CPIN: READY", "SMS Ready"),
    iccid={"CCID": None, "CICCID": "+ICCID"},
    sockets=SimcomSockets,
    pdp=("CNCFG",),
)

DIALECTS = {d.name: d for d in (GENERIC, QUECTEL, SIMCOM)}


def dialect(name: str) -> Dialect:
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown modem dialect {name!r} (one of: {', '.join(DIALECTS)})") from None
