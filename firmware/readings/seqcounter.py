# A monotonic counter in flash that survives reboots, power loss and a crash in the middle of a write,
# numbered within an epoch that a wiped or replaced flash cannot bring back.
#
# Two slot files alternate; each holds the epoch, the value and a CRC. The newer valid slot wins, and a
# write only ever touches the older one, so a torn write loses nothing: the previous value is still there.
# A number is stored before it is handed out, so after a crash it is skipped, never repeated.
#
# With no valid slot (a new board, a wiped or replaced flash) the count starts again at 1 in a new epoch:
# the network time (UTC seconds, AT+CCLK) it starts at. The epoch is not used before the network clock has
# passed that second, so a count started later has a later epoch: a verifier that orders readings by
# (epoch, seq) never takes a new number for an old one. Without a running network clock there is no such
# epoch, and nothing is numbered (NoEpochError).
import struct
import time

from micropython import const
from rpc_codes import E_NO_EPOCH

_FMT = ">IIIH"  # epoch, value, the value's complement, crc16 of the 12 bytes before
_SIZE = const(14)


class NoEpochError(Exception):
    """No epoch later than every earlier count's can be established: readings are not numbered."""

    code = E_NO_EPOCH


def _crc16(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


class SeqCounter:
    def __init__(self, path="seq", sleep_ms=time.sleep_ms):
        self.slots = (path + ".a", path + ".b")
        self._sleep_ms = sleep_ms
        (self.epoch, self.value), self._newest = self._load()  # epoch None: no count stored yet

    def _read(self, name):
        try:
            with open(name, "rb") as f:
                raw = f.read(_SIZE + 1)
        except OSError:
            return None
        if len(raw) != _SIZE:  # torn, or another format: not a slot
            return None
        epoch, value, inverse, crc = struct.unpack(_FMT, raw)
        if value ^ inverse != 0xFFFFFFFF or crc != _crc16(raw[:12]):
            return None
        return epoch, value

    def _load(self):
        best, newest = (None, 0), 1  # nothing stored yet: the first write goes to slot 0
        for i, name in enumerate(self.slots):
            slot = self._read(name)
            if slot is not None and (best[0] is None or slot >= best):
                best, newest = slot, i
        return best, newest

    def next(self, clock):
        """(epoch, number) of the next number, stored before it is returned. `clock()` is the network time
        in UTC seconds (None while unknown), asked only when a new epoch starts."""
        if self.epoch is None:
            start = clock()
            self._sleep_ms(1000)  # the epoch's second is over before it is used: no later count can share it
            if start is None or (clock() or 0) <= start:
                raise NoEpochError("no running network clock (AT+CCLK) for a new sequence epoch")
            self.epoch, self.value = start, 0
        value = self.value + 1
        head = struct.pack(">III", self.epoch, value, value ^ 0xFFFFFFFF)
        slot = 1 - self._newest
        with open(self.slots[slot], "wb") as f:
            f.write(head + struct.pack(">H", _crc16(head)))
        self.value, self._newest = value, slot
        return self.epoch, value
