# Minimal CBOR encoder (RFC 8949) writing into one bytearray, in the order the caller writes.
#
# MicroPython dicts are unordered, so maps are written item by item: the bytes come out the same
# on every run and are signed exactly as they were sent.
import struct


def head(out, major, n):
    """The initial byte(s) of an item: major type and argument (length, value or count)."""
    mt = major << 5
    if n < 24:
        out.append(mt | n)
    elif n < 0x100:
        out.append(mt | 24)
        out.append(n)
    elif n < 0x10000:
        out.append(mt | 25)
        out += struct.pack(">H", n)
    elif n < 0x100000000:
        out.append(mt | 26)
        out += struct.pack(">I", n)
    else:
        out.append(mt | 27)
        out += struct.pack(">Q", n)


def item(out, value):
    """Append one value: int, bytes, str, float, bool, None, or a list/tuple of those."""
    if value is True or value is False:
        out.append(0xF5 if value else 0xF4)
    elif value is None:
        out.append(0xF6)
    elif isinstance(value, int):
        if value >= 0:
            head(out, 0, value)
        else:
            head(out, 1, -1 - value)
    elif isinstance(value, float):
        out.append(0xFB)
        out += struct.pack(">d", value)
    elif isinstance(value, str):
        b = value.encode()
        head(out, 3, len(b))
        out += b
    elif isinstance(value, (bytes, bytearray, memoryview)):
        head(out, 2, len(value))
        out += value
    elif isinstance(value, (list, tuple)):
        head(out, 4, len(value))
        for v in value:
            item(out, v)
    else:
        raise TypeError("cannot encode %s as CBOR" % type(value).__name__)
    return out


def pairs(out, kv):
    """A map from a sequence of (key, value) pairs, in that order."""
    head(out, 5, len(kv))
    for k, v in kv:
        item(out, k)
        item(out, v)
    return out
