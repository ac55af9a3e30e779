# HKDF (RFC 5869) with the TLS 1.3 labels (RFC 8446 section 7.1), on core's HMAC-SHA256 (hmac_sha256.py).
# Everything returns bytes of the hash length unless told otherwise.

from hmac_sha256 import hmac_sha256

HASH_LEN = 32


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
