# HMAC-SHA256 and HKDF (RFC 2104, RFC 5869) with the TLS 1.3 labels (RFC 8446 section 7.1).
#
# Built on the native hashlib.sha256; the pads are XORed as 512-bit integers, which is much faster
# in MicroPython than a byte loop. Everything returns bytes of the hash length unless told otherwise.
import hashlib

HASH_LEN = 32
_IPAD = int.from_bytes(b"\x36" * 64, "big")
_OPAD = int.from_bytes(b"\x5c" * 64, "big")


def _block_key(key):
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    return int.from_bytes(bytes(key) + bytes(64 - len(key)), "big")


def hmac_sha256(key, *parts):
    """HMAC-SHA256 of the concatenation of `parts` (bytes-like), so callers need not join them."""
    k = _block_key(key)
    inner = hashlib.sha256((k ^ _IPAD).to_bytes(64, "big"))
    for p in parts:
        inner.update(p)
    outer = hashlib.sha256((k ^ _OPAD).to_bytes(64, "big"))
    outer.update(inner.digest())
    return outer.digest()


def extract(salt, ikm):
    """HKDF-Extract: an empty salt means HashLen zero bytes (RFC 5869 section 2.2)."""
    return hmac_sha256(salt or bytes(HASH_LEN), ikm)


def expand(prk, info, length):
    if length > 255 * HASH_LEN:
        raise ValueError("HKDF output too long")
    out = bytearray()
    t = b""
    i = 1
    while len(out) < length:
        t = hmac_sha256(prk, t, info, bytes((i,)))
        out += t
        i += 1
    return bytes(out[:length])


def expand_label(secret, label, context, length):
    """HKDF-Expand-Label: info = length || "tls13 " + label || context, each with its length prefix."""
    full = b"tls13 " + label
    info = bytes((length >> 8, length & 0xFF, len(full))) + full + bytes((len(context),)) + context
    return expand(secret, info, length)


def derive_secret(secret, label, transcript_hash):
    return expand_label(secret, label, transcript_hash, HASH_LEN)
