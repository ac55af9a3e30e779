# Store-and-forward: the readings waiting for the broker, kept in flash one file each, oldest first.
#
# A reading is written to a temporary file and renamed into place (renames are atomic in littlefs, on
# FAT's single directory entry and in POSIX), so a reset or power loss in the middle of a write leaves the
# whole reading or none of it; temporary files are removed when the outbox opens. A file is named by the
# reading's (epoch, seq), zero-padded, so names sort in the order the readings were taken, and holds its
# topic and its COSE_Sign1. The outbox is bounded: when it is full the oldest reading goes, and the count of
# readings dropped travels in the next reading taken (`dropped`), so a drop is never silent.
#
# With a seal key (flash_seal.py: derived by the SIM) each file ends in a tag of its name and content: a file
# whose tag fails was changed, or is another SIM's; `read` says so (Tampered) and the sender drops it, counted
# like a reading the full outbox let go.
import os

from flash_seal import TAG, tag
from micropython import const

FOLDER = "outbox.d"  # a name no import takes for a package (a folder "outbox" would hide this module)
LIMIT = const(64)  # readings: 64 x about 200 bytes of flash
_DROPPED = "dropped"  # the count of readings dropped and not yet reported in a reading


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


class Tampered(Exception):
    """A queued reading failed its seal: never sent."""


class Outbox:
    def __init__(self, folder=FOLDER, limit=LIMIT, seal=None):
        """`seal`: () -> the seal key (flash_seal.key), or None: files as they are."""
        self.folder, self.limit, self._seal = folder, limit, seal
        if not _exists(folder):
            os.mkdir(folder)
        for name in os.listdir(folder):
            if name.endswith(".tmp"):  # a write a reset cut short: that reading was never queued
                os.remove(self._path(name))
        self.dropped = self._read_dropped()

    def _path(self, name):
        return self.folder + "/" + name

    def _read_dropped(self):
        try:
            with open(self._path(_DROPPED)) as f:
                return int(f.read())
        except (OSError, ValueError):
            return 0

    def _write(self, name, data):
        tmp = self._path(name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, self._path(name))

    def names(self):
        """The queued readings' names, oldest first."""
        return sorted(n for n in os.listdir(self.folder) if n.endswith(".cose"))

    def __len__(self):
        return len(self.names())

    def add(self, epoch, seq, topic, cose, reported=0):
        """Queue a reading, and return its name; `reported`: how many drops it tells of (they are taken off the count once it is
        queued: a reset in between has the next reading tell of them again, never none)."""
        queued = self.names()
        while len(queued) >= self.limit:
            self.drop(queued.pop(0))
        name = "%010d-%010d.cose" % (epoch, seq)
        data = topic.encode() + b"\n" + cose
        key = self._seal() if self._seal else None
        self._write(name, data + tag(key, name.encode(), data) if key else data)
        if reported:
            self.dropped -= reported
            self._write(_DROPPED, b"%d" % self.dropped)
        return name

    def read(self, name):
        """(topic, COSE_Sign1) of a queued reading; Tampered if it fails its seal."""
        with open(self._path(name), "rb") as f:
            data = f.read()
        key = self._seal() if self._seal else None
        if key:
            data, sealed = data[:-TAG], data[-TAG:]
            if sealed != tag(key, name.encode(), data):
                raise Tampered("queued reading %s failed its seal (changed, or another SIM's): dropped" % name[:-5])
        i = data.index(b"\n")
        return data[:i].decode(), data[i + 1:]

    def drop(self, name):
        """Remove a reading that is never to be sent, counted as dropped (the next reading tells of it)."""
        os.remove(self._path(name))
        self.dropped += 1
        self._write(_DROPPED, b"%d" % self.dropped)

    def remove(self, name):
        os.remove(self._path(name))
