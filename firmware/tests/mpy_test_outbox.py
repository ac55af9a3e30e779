# The outbox in flash: readings kept in the order taken, across a reopen (a reboot); a write cut short by a
# reset leaves no reading; a full outbox drops the oldest and counts them until a reading tells of them.
import os

from outbox import Outbox

_DIR = "/tmp/safebench-outbox-test-%d" % os.getpid() if hasattr(os, "getpid") else "/tmp/safebench-outbox-test"


def _fresh(limit=4):
    try:
        for name in os.listdir(_DIR):
            os.remove(_DIR + "/" + name)
        os.rmdir(_DIR)
    except OSError:
        pass
    return Outbox(_DIR, limit)


def test_in_the_order_taken_across_a_reopen():
    box = _fresh()
    box.add(1700000000, 9, "t/a", b"\xd2nine")
    box.add(1700000000, 10, "t/a", b"\xd2ten")  # 10 after 9: the names are zero-padded
    box.add(1699999999, 99, "t/b", b"\xd2old epoch")
    again = Outbox(_DIR, 4)
    names = again.names()
    assert len(again) == 3 and [again.read(n) for n in names] == [
        ("t/b", b"\xd2old epoch"), ("t/a", b"\xd2nine"), ("t/a", b"\xd2ten")]
    again.remove(names[0])
    assert Outbox(_DIR, 4).names() == names[1:]


def test_a_write_cut_short_leaves_no_reading():
    box = _fresh()
    box.add(1, 1, "t", b"whole")
    with open(_DIR + "/0000000001-0000000002.cose.tmp", "wb") as f:  # a reset came before the rename
        f.write(b"t\nhal")
    again = Outbox(_DIR, 4)
    assert [again.read(n) for n in again.names()] == [("t", b"whole")]
    assert not any(n.endswith(".tmp") for n in os.listdir(_DIR))


def test_a_full_outbox_drops_the_oldest_and_counts_them():
    box = _fresh(limit=2)
    for seq in (1, 2, 3, 4):
        box.add(1, seq, "t", b"r%d" % seq)
    assert [box.read(n)[1] for n in box.names()] == [b"r3", b"r4"] and box.dropped == 2
    assert Outbox(_DIR, 2).dropped == 2  # the count is in flash too
    box.add(1, 5, "t", b"r5 says 2 dropped", reported=2)  # drops r3 (one more) and tells of the two before
    assert box.dropped == 1 and Outbox(_DIR, 2).dropped == 1
    assert [box.read(n)[1] for n in box.names()] == [b"r4", b"r5 says 2 dropped"]


def test_a_topic_may_hold_any_byte_but_a_newline():
    box = _fresh()
    box.add(1, 1, "safebench/8988 01/readings", b"\n\x00binary\n")
    assert box.read(box.names()[0]) == ("safebench/8988 01/readings", b"\n\x00binary\n")


def test_a_sealed_reading_changed_in_flash_is_dropped_never_read():
    from outbox import Tampered

    box = _fresh()
    box._seal = lambda: b"k" * 32
    box.add(1700000000, 1, "t/a", b"\xd2one")
    box.add(1700000000, 2, "t/a", b"\xd2two")
    first, second = box.names()
    assert box.read(first) == ("t/a", b"\xd2one")
    path = _DIR + "/" + second
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[5] ^= 1
    with open(path, "wb") as f:
        f.write(data)
    try:
        box.read(second)
        raise AssertionError("a changed reading was read")
    except Tampered as e:
        assert "failed its seal" in str(e)
    box.drop(second)
    assert box.names() == [first] and box.dropped == 1  # the next reading tells of it
    renamed = _DIR + "/0000000009-0000000009.cose"
    os.rename(_DIR + "/" + first, renamed)  # a tag covers the name too: no reading passes for another
    try:
        box.read("0000000009-0000000009.cose")
        raise AssertionError("a renamed reading was read")
    except Tampered:
        pass
