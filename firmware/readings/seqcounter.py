# A monotonic counter in flash that survives reboots, power loss and a crash in the middle of a write,
# numbered within an epoch that a wiped or replaced flash cannot bring back.
#
# Two slot files alternate; each holds the epoch, the value and a CRC. The newer valid slot wins, and a
# write only ever touches the older one, so a torn write loses nothing: the previous value is still there.
# A number is stored before it is handed out, so after a crash it is skipped, never repeated.
#
# With a seal key (flash_seal.py: derived by the SIM) a slot carries an HMAC tag instead of the CRC: a slot
# whose tag fails was changed, or is another SIM's, and is never used; the count goes on in a new epoch, whatever
# the other slot holds (an older value would hand a number out twice), and `warning` says so once.
#
# With no valid slot (a new board, a wiped or replaced flash) the count starts again at 1 in a new epoch:
# the network time (UTC seconds, AT+CCLK) it starts at. The epoch is not used before the network clock has
# passed that second, so a count started later has a later epoch: a verifier that orders readings by
# (epoch, seq) never takes a new number for an old one. Without a running network clock there is no such
# epoch, and nothing is numbered (NoEpochError).
import struct
import sys
import time

from micropython import const
from rpc_codes import E_NO_EPOCH

# A slot: epoch, value, the value's complement (">III"), then the crc16 of those 12 bytes, or their seal tag.
_SIZE = const(14)
_SEALED = const(28)
TAMPERED = "the sequence counter in flash failed its seal (changed, or another SIM's): counting goes on in a new epoch"


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
    def __init__(self, path="seq", sleep_ms=time.sleep_ms, seal=None):
        """`seal`: () -> the seal key (flash_seal.key), or None: CRCs alone."""
        self.slots = (path + ".a", path + ".b")
        self._sleep_ms = sleep_ms
        self._seal = seal
        self.warning = None  # TAMPERED once a slot failed its seal, until the next number is taken
        (self.epoch, self.value), self._newest = self._load()  # epoch None: no count stored yet

    def _read(self, name):
        try:
            with open(name, "rb") as f:
                raw = f.read(_SEALED + 1)
        except OSError:
            return None
        if len(raw) not in (_SIZE, _SEALED):  # torn, or another format: not a slot
            return None
        key = self._seal() if self._seal else None  # asked only with a slot there: a new count's first AT is the clock's
        if len(raw) != (_SEALED if key else _SIZE):  # sealed under no key, or not sealed under one: not a slot
            return None
        epoch, value, inverse = struct.unpack(">III", raw[:12])
        if key:
            from flash_seal import tag

            if raw[12:] != tag(key, raw[:12]):
                self.warning = TAMPERED
                return None
        elif struct.unpack(">H", raw[12:])[0] != _crc16(raw[:12]):
            return None
        if value ^ inverse != 0xFFFFFFFF:
            return None
        return epoch, value

    def _load(self):
        best, newest = (None, 0), 1  # nothing stored yet: the first write goes to slot 0
        for i, name in enumerate(self.slots):
            slot = self._read(name)
            if slot is not None and (best[0] is None or slot >= best):
                best, newest = slot, i
        if self.warning:
            best = (None, 0)  # a new epoch: no number handed out under the changed slot comes back
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
        key = self._seal() if self._seal else None
        if key:
            from flash_seal import tag

            head += tag(key, head)
        else:
            head += struct.pack(">H", _crc16(head))
        slot = 1 - self._newest
        with open(self.slots[slot], "wb") as f:
            f.write(head)
        self.value, self._newest = value, slot
        return self.epoch, value


_board = None  # the board's counter, made on its first reading
_SEAL_MODULES = ("flash_seal", "hmac_sha256")


def board_number(s, clock):
    """(epoch, seq, warning) of the board's next reading number, its slots sealed by the SIM session `s`
    (flash_seal.py). The seal's modules are let go after: not on the heap when the reading is signed (64 KB)."""
    global _board
    new = [name for name in _SEAL_MODULES if name not in sys.modules]
    try:
        if _board is None:
            _board = SeqCounter(seal=lambda: __import__("flash_seal").key(s))
        epoch, value = _board.next(clock)
    finally:
        for name in new:
            sys.modules.pop(name, None)
    warning, _board.warning = _board.warning, None
    return epoch, value, warning
