# The sequence counter never repeats a number, also after a torn or garbled write.
import os

from seqcounter import SeqCounter

PATH = "/tmp/safebench_seq_%d" % os.getpid() if hasattr(os, "getpid") else "/tmp/safebench_seq"


def _clean():
    for suffix in (".a", ".b"):
        try:
            os.remove(PATH + suffix)
        except OSError:
            pass


def test_counts_and_survives_restart():
    _clean()
    c = SeqCounter(PATH)
    assert [c.next() for _ in range(5)] == [1, 2, 3, 4, 5]
    assert SeqCounter(PATH).next() == 6
    _clean()


def test_torn_write_loses_nothing():
    _clean()
    c = SeqCounter(PATH)
    for _ in range(7):
        c.next()
    # Power fails while 8 is being stored: the write goes to the older slot, which is left torn.
    with open(c.slots[1 - c._newest], "wb") as f:
        f.write(b"\x00\x00\x00")
    again = SeqCounter(PATH)
    assert again.value == 7  # 7 was handed out and is still known
    assert again.next() == 8  # never repeated
    _clean()


def test_garbled_slot_is_ignored():
    _clean()
    c = SeqCounter(PATH)
    c.next()
    c.next()
    with open(c.slots[c._newest], "r+b") as f:
        f.write(b"\xff")  # flips the value, so the CRC no longer matches
    assert SeqCounter(PATH).value == 1
    _clean()
