# HMAC-SHA256 (RFC 2104), for TLS (tls/hkdf.py) and for the board's state in flash (flash_seal.py).
#
# Built on the native hashlib.sha256; the pads are XORed as 512-bit integers, which is much faster
# in MicroPython than a byte loop.
import hashlib

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
