# A monotonic counter in flash that survives reboots, power loss and a crash in the middle of a write.
#
# Two slot files alternate; each holds the value and a CRC. The newer valid slot wins, and a write
# only ever touches the older one, so a torn write loses nothing: the previous value is still there.
# A number is stored before it is handed out, so after a crash it is skipped, never repeated.
import struct

from micropython import const

_FMT = ">IIH"  # value, its complement, crc16
_SIZE = const(10)


def _crc16(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


class SeqCounter:
    def __init__(self, path="seq"):
        self.slots = (path + ".a", path + ".b")
        self.value, self._newest = self._load()

    def _read(self, name):
        try:
            with open(name, "rb") as f:
                raw = f.read(_SIZE)
        except OSError:
            return None
        if len(raw) != _SIZE:
            return None
        value, inverse, crc = struct.unpack(_FMT, raw)
        if value ^ inverse != 0xFFFFFFFF or crc != _crc16(raw[:8]):
            return None
        return value

    def _load(self):
        values = [self._read(s) for s in self.slots]
        best, newest = 0, 1  # nothing stored yet: the first write goes to slot 0
        for i, v in enumerate(values):
            if v is not None and v >= best:
                best, newest = v, i
        return best, newest

    def next(self):
        """The next number, stored before it is returned."""
        value = self.value + 1
        head = struct.pack(">II", value, value ^ 0xFFFFFFFF)
        slot = 1 - self._newest
        with open(self.slots[slot], "wb") as f:
            f.write(head + struct.pack(">H", _crc16(head)))
        self.value, self._newest = value, slot
        return value
