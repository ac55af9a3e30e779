# AES-128-GCM (NIST SP 800-38D) and AES-CCM (SP 800-38C, RFC 3610) on top of cryptolib's native AES.
#
# MicroPython's cryptolib has AES in ECB and CBC mode only, so:
# - CTR: counter blocks are built in one buffer and encrypted with a single native ECB call per
#   256 bytes; the keystream is XORed as one big integer (much faster than a byte loop).
# - GHASH: 4-bit table (Shoup), 16 entries per key; the 8-bit table is faster but its ~25 KB of
#   big integers fragments a small heap.
# - CBC-MAC (CCM): native CBC encryption with a zero IV, keeping only the last block.
# Both work in place on a caller's buffer: seal() appends the tag, open() checks it before handing
# plaintext back (GCM checks before decrypting; CCM wipes the plaintext again when the tag is wrong).
import struct

import cryptolib
from micropython import const

_CHUNK = const(256)  # bytes of keystream per native ECB call
_R = 0xE1 << 120  # GCM reduction polynomial, bit-reflected: 1 + x + x^2 + x^7


class AuthError(ValueError):
    """The tag does not match: the data or the associated data was changed, or the key is wrong."""


_ZEROS = bytes(64)


def wipe_buffer(buf):
    """Overwrite a bytearray with zeros in place, without allocating a buffer of its size."""
    mv = memoryview(buf)
    n = len(buf)
    for i in range(0, n - 63, 64):
        mv[i:i + 64] = _ZEROS
    tail = n & 63
    for i in range(n - tail, n):
        buf[i] = 0


def _equal(a, b):
    return len(a) == len(b) and int.from_bytes(a, "big") ^ int.from_bytes(b, "big") == 0


def _reduction_table():
    # red[r]: what the four low bits r (coefficients x^124..x^127) become after multiplying by x^4
    red = [0] * 16
    for r in range(16):
        v = 0
        for j in range(4):
            if r & (8 >> j):
                v ^= _R >> j
        red[r] = v
    return red


_RED = _reduction_table()


class _AesCtr:
    """AES in counter mode; subclasses choose the counter block layout and the MAC."""

    tag_len = 16

    def __init__(self, key):
        if len(key) != 16:
            raise ValueError("AES-128 needs a 16-byte key")
        self._key = bytearray(key)
        self._ecb = cryptolib.aes(bytes(key), 1)
        self._blocks = bytearray(_CHUNK)
        self._stream = bytearray(_CHUNK)

    def _encrypt_block(self, block):
        out = bytearray(16)
        self._ecb.encrypt(block, out)
        return out

    def _xor_stream(self, prefix, counter, buf, n):
        """XOR buf[:n] with the keystream of blocks prefix||counter, counter+1, ... (counter in the last 4 bytes)."""
        blocks, stream = self._blocks, self._stream
        head = prefix[:12]
        tail = int.from_bytes(prefix[12:16], "big")
        for j in range(0, _CHUNK, 16):
            blocks[j:j + 12] = head
        mv, ks = memoryview(buf), memoryview(stream)
        off = 0
        while off < n:
            m = min(_CHUNK, n - off)
            nb = (m + 15) >> 4
            for j in range(nb):
                struct.pack_into(">I", blocks, (j << 4) + 12, (tail | (counter + j)) & 0xFFFFFFFF)
            counter += nb
            self._ecb.encrypt(memoryview(blocks)[:nb << 4], ks[:nb << 4])
            x = int.from_bytes(mv[off:off + m], "big") ^ int.from_bytes(ks[:m], "big")
            mv[off:off + m] = x.to_bytes(m, "big")
            off += m

    def wipe(self):
        """Overwrite the key and the keystream buffers. The native key schedule (and GCM's table of
        integers) cannot be overwritten from Python: they are dropped here and freed by the GC."""
        for b in (self._key, self._blocks, self._stream):
            wipe_buffer(b)
        self._ecb = None
        self._table = None


class AesGcm(_AesCtr):
    """AES-128-GCM with 12-byte nonces and 16-byte tags (the TLS 1.3 profile)."""

    def __init__(self, key):
        super().__init__(key)
        h = int.from_bytes(self._encrypt_block(bytes(16)), "big")
        # table[n]: the nibble n (its high bit is x^0) times H
        table = [0] * 16
        v = h
        for bit in (8, 4, 2, 1):
            table[bit] = v
            v = (v >> 1) ^ (_R if v & 1 else 0)
        for n in range(16):
            if n & (n - 1):
                table[n] = table[n & 8] ^ table[n & 4] ^ table[n & 2] ^ table[n & 1]
        self._table = table

    def _ghash(self, y, data, n):
        table, red = self._table, _RED
        mv = memoryview(data)
        for off in range(0, n, 16):
            m = min(16, n - off)
            x = y ^ (int.from_bytes(mv[off:off + m], "big") << ((16 - m) << 3))
            z = 0
            for _ in range(32):
                z = (z >> 4) ^ red[z & 15] ^ table[x & 15]
                x >>= 4
            y = z
        return y

    def _tag(self, nonce, aad, buf, n):
        y = self._ghash(0, aad, len(aad))
        y = self._ghash(y, buf, n)
        y = self._ghash(y, (len(aad) << 3).to_bytes(8, "big") + (n << 3).to_bytes(8, "big"), 16)
        j0 = self._encrypt_block(bytes(nonce) + b"\x00\x00\x00\x01")
        return (int.from_bytes(j0, "big") ^ y).to_bytes(16, "big")

    def seal(self, nonce, aad, buf, n):
        """Encrypt buf[:n] in place and write the tag at buf[n:n+16]; returns n + 16."""
        _check_nonce(nonce)
        self._xor_stream(nonce, 2, buf, n)
        buf[n:n + 16] = self._tag(nonce, aad, buf, n)
        return n + 16

    def open(self, nonce, aad, buf, n):
        """Check the tag of buf[:n] (ciphertext || tag), then decrypt in place; returns the plaintext length."""
        _check_nonce(nonce)
        m = n - 16
        if m < 0 or not _equal(self._tag(nonce, aad, buf, m), memoryview(buf)[m:n]):
            raise AuthError("bad tag")
        self._xor_stream(nonce, 2, buf, m)
        return m


def _check_nonce(nonce):
    if len(nonce) != 12:
        raise ValueError("GCM here takes 12-byte nonces")


class AesCcm(_AesCtr):
    """AES-CCM with nonces of 7..13 bytes and tags of 4..16 bytes (TLS 1.3: 12 and 16)."""

    def __init__(self, key, tag_len=16):
        if tag_len not in (4, 6, 8, 10, 12, 14, 16):
            raise ValueError("CCM tag length must be even, 4..16")
        super().__init__(key)
        self.tag_len = tag_len

    def _mac(self, nonce, aad, buf, n):
        q = 15 - len(nonce)
        if not 2 <= q <= 8 or n >> (q << 3):
            raise ValueError("CCM nonce length or message length out of range")
        if len(aad) >= 0xFF00:
            raise ValueError("CCM associated data too long")
        flags = (0x40 if aad else 0) | (((self.tag_len - 2) >> 1) << 3) | (q - 1)
        head = bytearray(bytes((flags,)) + bytes(nonce) + n.to_bytes(q, "big"))
        if aad:
            head += bytes((len(aad) >> 8, len(aad) & 0xFF)) + bytes(aad)
        head += bytes(-len(head) % 16)
        cbc = cryptolib.aes(bytes(self._key), 2, bytes(16))
        last = cbc.encrypt(head)[-16:]
        mv, out = memoryview(buf), memoryview(self._stream)
        full = n & ~15
        off = 0
        while off < full:
            m = min(_CHUNK, full - off)
            cbc.encrypt(mv[off:off + m], out[:m])
            last = out[m - 16:m]
            off += m
        if n > full:
            last = cbc.encrypt(bytes(mv[full:n]) + bytes(16 - (n - full)))
        return bytes(last[:self.tag_len])

    def _s0_prefix(self, nonce):
        q = 15 - len(nonce)
        return bytes((q - 1,)) + bytes(nonce) + bytes(q)

    def seal(self, nonce, aad, buf, n):
        """Encrypt buf[:n] in place and write the tag after it; returns n + tag length."""
        t = self.tag_len
        mac = self._mac(nonce, aad, buf, n)
        prefix = self._s0_prefix(nonce)
        s0 = self._encrypt_block(prefix)
        self._xor_stream(prefix, 1, buf, n)
        buf[n:n + t] = (int.from_bytes(mac, "big") ^ int.from_bytes(s0[:t], "big")).to_bytes(t, "big")
        return n + t

    def open(self, nonce, aad, buf, n):
        """Decrypt buf[:n] (ciphertext || tag) in place and check the tag; returns the plaintext length."""
        t = self.tag_len
        m = n - t
        if m < 0:
            raise AuthError("record shorter than the tag")
        prefix = self._s0_prefix(nonce)
        s0 = self._encrypt_block(prefix)
        self._xor_stream(prefix, 1, buf, m)
        mac = self._mac(nonce, aad, buf, m)
        want = (int.from_bytes(mac, "big") ^ int.from_bytes(s0[:t], "big")).to_bytes(t, "big")
        if not _equal(want, memoryview(buf)[m:n]):
            for i in range(m):  # never leave unauthenticated plaintext behind
                buf[i] = 0
            raise AuthError("bad tag")
        return m
