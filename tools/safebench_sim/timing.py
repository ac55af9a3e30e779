"""Time a real modem and SIM would take: UART bytes at the link's baud rate plus the card's latency.

The card profile's ``timing`` section gives the latency per instruction, keyed by INS in hex
(``{"baud": 115200, "latency_ms": {"default": 5, "B9": 1500}}``). A UART frame is 10 bits per
byte (start, 8 data, stop). The simulator records this modeled time per APDU in its trace, so
benchmarks can add it up without waiting; with ``--realtime`` it also delays its replies by it.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_BAUD = 115200
BITS_PER_BYTE = 10


class TimingModel:
    def __init__(self, baud: int = DEFAULT_BAUD, latency_ms: Mapping[str, float] | None = None):
        if baud <= 0:
            raise ValueError(f"baud rate must be positive, not {baud}")
        self.baud = baud
        self._latency = {key.upper(): float(value) for key, value in (latency_ms or {}).items()}
        self._default = self._latency.pop("DEFAULT", 0.0)

    @classmethod
    def from_profile(cls, profile: Mapping, baud: int | None = None) -> TimingModel:
        """From a card profile: ``baud`` wins, then ``modem.baud``, then ``timing.baud``."""
        timing = profile.get("timing", {}) or {}
        baud = baud or (profile.get("modem", {}) or {}).get("baud") or timing.get("baud") or DEFAULT_BAUD
        return cls(int(baud), timing.get("latency_ms"))

    def uart_ms(self, nbytes: int) -> float:
        return nbytes * BITS_PER_BYTE * 1000.0 / self.baud

    def card_ms(self, ins: int) -> float:
        return self._latency.get(f"{ins:02X}", self._default)
