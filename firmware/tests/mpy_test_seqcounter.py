# The sequence counter never repeats a number, also after a torn or garbled write, and a count started
# again (wiped flash) is in a later epoch, or refused when the network clock cannot give one.
import os
import struct

from seqcounter import NoEpochError, SeqCounter

PATH = "/tmp/safebench_seq_%d" % os.getpid() if hasattr(os, "getpid") else "/tmp/safebench_seq"
START = 1764061500  # network time, UTC seconds


class Clock:
    """The network clock: `ticks` reads of each second (None: not set), then the next second."""

    def __init__(self, start=START, ticks=2):
        self.now, self.ticks, self.reads = start, ticks, 0

    def __call__(self):
        self.reads += 1
        if self.now is not None and self.reads % self.ticks == 0:
            self.now += 1
        return self.now


def _counter():
    return SeqCounter(PATH, sleep_ms=lambda ms: None)


def _clean():  # a wiped flash
    for suffix in (".a", ".b"):
        try:
            os.remove(PATH + suffix)
        except OSError:
            pass


def test_counts_and_survives_restart():
    _clean()
    c, clock = _counter(), Clock()
    assert [c.next(clock) for _ in range(5)] == [(START, n) for n in range(1, 6)]
    reads = clock.reads
    assert _counter().next(clock) == (START, 6)
    assert clock.reads == reads  # the clock is asked only to start an epoch
    _clean()


def test_wiped_flash_starts_a_later_epoch():
    _clean()
    clock = Clock()
    first = _counter().next(clock)
    _clean()
    again = _counter().next(clock)  # at once: the first epoch's second was over before it was used
    assert again[1] == 1 and again[0] > first[0]
    _clean()


def test_no_network_time_numbers_nothing():
    _clean()
    c = _counter()
    for clock in (Clock(start=None), Clock(ticks=1000)):  # never set; stopped
        try:
            c.next(clock)
            raise AssertionError("numbered without an epoch")
        except NoEpochError as e:
            assert e.code == -32006 and "network" in str(e)
    assert _counter().epoch is None  # nothing was stored
    assert c.next(Clock()) == (START, 1)  # the network time came: counting starts
    _clean()


def test_torn_write_loses_nothing():
    _clean()
    c = _counter()
    for _ in range(7):
        c.next(Clock())
    # Power fails while 8 is being stored: the write goes to the older slot, which is left torn.
    with open(c.slots[1 - c._newest], "wb") as f:
        f.write(b"\x00\x00\x00")
    again = _counter()
    assert (again.epoch, again.value) == (START, 7)  # 7 was handed out and is still known
    assert again.next(Clock()) == (START, 8)  # never repeated
    _clean()


def test_garbled_slot_is_ignored():
    _clean()
    c = _counter()
    c.next(Clock())
    c.next(Clock())
    with open(c.slots[c._newest], "r+b") as f:
        f.write(b"\xff")  # flips the epoch, so the CRC no longer matches
    assert (_counter().epoch, _counter().value) == (START, 1)
    _clean()


def test_slot_of_another_format_is_no_count():
    _clean()
    with open(PATH + ".a", "wb") as f:  # firmware 0.2's slot: value, complement, crc16, no epoch
        f.write(struct.pack(">IIH", 9, 9 ^ 0xFFFFFFFF, 0))
    assert _counter().next(Clock()) == (START, 1)  # a new epoch, not a number of the old count
    _clean()


def _sealed(key=b"k" * 32):
    return SeqCounter(PATH, sleep_ms=lambda ms: None, seal=lambda: key)


def _flip(path, offset):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[offset] ^= 1
    with open(path, "wb") as f:
        f.write(data)


def test_a_sealed_slot_changed_in_flash_starts_a_new_epoch_and_says_so():
    _clean()
    c, clock = _sealed(), Clock()
    assert [c.next(clock) for _ in range(3)] == [(START, 1), (START, 2), (START, 3)]
    assert _sealed().next(clock) == (START, 4) and _sealed().warning is None  # the seal holds across a restart
    _flip(PATH + ".a", 7)  # the value of the newer slot: seq 5 would come back as another number
    again = _sealed()
    assert again.warning is not None and "failed its seal" in again.warning
    epoch, seq = again.next(clock)
    assert epoch > START and seq == 1  # never a number handed out before, whatever the other slot says


def test_another_sims_seal_is_not_this_ones():
    _clean()
    clock = Clock()
    _sealed(b"a" * 32).next(clock)
    other = _sealed(b"b" * 32)
    assert other.warning is not None and other.next(clock)[0] > START
