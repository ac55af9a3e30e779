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

    def latency_ms(self, ins: int) -> float:
        """The card's processing time for instruction `ins` (the profile's figure, else its default)."""
        return self._latency.get(f"{ins:02X}", self._default)

    def card_ms(self, apdu: bytes) -> float:
        """The card's time for this APDU: an intermediate Compute/Verify Signature Update block only
        hashes (P1 b8 clear), so only the last block takes the signature's latency."""
        if len(apdu) < 4:
            return self._default
        ins, p1 = apdu[1], apdu[2]
        if ins in (0x2B, 0x2D) and not p1 & 0x80:
            return self._default
        return self.latency_ms(ins)

    def csim_transfer_ms(self, apdu: bytes, response: bytes) -> float:
        """UART time of the AT+CSIM line carrying `apdu` and the +CSIM answer carrying `response`."""
        command = len(f'AT+CSIM={2 * len(apdu)},"') + 2 * len(apdu) + 2  # closing quote and CR
        answer = len(f'\r\n+CSIM: {2 * len(response)},"') + 2 * len(response) + len('"\r\n\r\nOK\r\n')
        return self.uart_ms(command + answer)

    def modeled_time_ms(self, apdu: bytes, response: bytes) -> float:
        return self.card_ms(apdu) + self.csim_transfer_ms(apdu, response)
