"""Finish a SHA-256/384/512 hash from an intermediate state: Compute Signature mode 02.

In "last block" mode the host hashes all whole blocks of a long message itself and sends the
card the intermediate hash state (tag 9C: the eight chaining words, big-endian), the number of
bytes already hashed (9D) and the rest of the message (9A). No hashing library resumes from a
bare state, so this module carries the SHA-2 compression functions (FIPS 180-4). Round
constants and initial values are derived from the primes, as the standard defines them, rather
than typed in.
"""

from __future__ import annotations

from dataclasses import dataclass


def _primes(n: int) -> list[int]:
    found: list[int] = []
    candidate = 2
    while len(found) < n:
        if all(candidate % p for p in found if p * p <= candidate):
            found.append(candidate)
        candidate += 1
    return found


def _iroot(x: int, k: int) -> int:
    """floor(x ** (1/k)) for big integers."""
    lo, hi = 0, 1 << (x.bit_length() // k + 1)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if mid ** k <= x:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _fraction_bits(prime: int, root: int, bits: int) -> int:
    """The first ``bits`` bits of the fractional part of prime ** (1/root)."""
    return _iroot(prime << (root * bits), root) & ((1 << bits) - 1)


@dataclass(frozen=True)
class Variant:
    name: str
    word_bits: int
    block_size: int  # bytes
    digest_size: int  # bytes
    rounds: int
    sigmas: tuple[tuple[int, int, int], ...]  # (Sigma0, Sigma1, sigma0, sigma1) rotation/shift amounts
    iv: tuple[int, ...]
    k: tuple[int, ...]

    @property
    def state_size(self) -> int:
        """Bytes of the intermediate state: eight words."""
        return self.word_bits  # 8 words of word_bits / 8 bytes


def _variant(name, word_bits, digest_size, rounds, sigmas, iv_primes):
    primes = _primes(rounds)
    return Variant(name, word_bits, 16 * word_bits // 8, digest_size, rounds, sigmas,
                   tuple(_fraction_bits(p, 2, word_bits) for p in iv_primes),
                   tuple(_fraction_bits(p, 3, word_bits) for p in primes))


_S256 = ((2, 13, 22), (6, 11, 25), (7, 18, 3), (17, 19, 10))
_S512 = ((28, 34, 39), (14, 18, 41), (1, 8, 7), (19, 61, 6))
SHA256 = _variant("sha256", 32, 32, 64, _S256, _primes(8))
SHA384 = _variant("sha384", 64, 48, 80, _S512, _primes(16)[8:])
SHA512 = _variant("sha512", 64, 64, 80, _S512, _primes(8))
VARIANTS = {"sha256": SHA256, "sha384": SHA384, "sha512": SHA512}


def compress(v: Variant, state: list[int], block: bytes) -> list[int]:
    """One SHA-2 compression of a ``v.block_size`` block into the eight-word ``state``."""
    bits, mask = v.word_bits, (1 << v.word_bits) - 1
    size = bits // 8

    def rotr(x, n):
        return ((x >> n) | (x << (bits - n))) & mask

    (a0, a1, a2), (e0, e1, e2), (s0a, s0b, s0c), (s1a, s1b, s1c) = v.sigmas
    w = [int.from_bytes(block[i:i + size], "big") for i in range(0, v.block_size, size)]
    for t in range(16, v.rounds):
        x, y = w[t - 15], w[t - 2]
        s0 = rotr(x, s0a) ^ rotr(x, s0b) ^ (x >> s0c)
        s1 = rotr(y, s1a) ^ rotr(y, s1b) ^ (y >> s1c)
        w.append((w[t - 16] + s0 + w[t - 7] + s1) & mask)
    a, b, c, d, e, f, g, h = state
    for t in range(v.rounds):
        t1 = (h + (rotr(e, e0) ^ rotr(e, e1) ^ rotr(e, e2)) + ((e & f) ^ (~e & g)) + v.k[t] + w[t]) & mask
        t2 = ((rotr(a, a0) ^ rotr(a, a1) ^ rotr(a, a2)) + ((a & b) ^ (a & c) ^ (b & c))) & mask
        a, b, c, d, e, f, g, h = (t1 + t2) & mask, a, b, c, (d + t1) & mask, e, f, g
    return [(x + y) & mask for x, y in zip(state, (a, b, c, d, e, f, g, h), strict=True)]


def state_bytes(v: Variant, state: list[int]) -> bytes:
    return b"".join(x.to_bytes(v.word_bits // 8, "big") for x in state)


def intermediate(v: Variant, data: bytes) -> bytes:
    """The state after hashing ``data`` (a whole number of blocks) from the start: what a host sends."""
    if len(data) % v.block_size:
        raise ValueError("intermediate state exists only after whole blocks")
    state = list(v.iv)
    for i in range(0, len(data), v.block_size):
        state = compress(v, state, data[i:i + v.block_size])
    return state_bytes(v, state)


def finish(v: Variant, state: bytes, hashed: int, rest: bytes) -> bytes:
    """The digest of a message whose first ``hashed`` bytes gave ``state``, followed by ``rest``.

    ValueError when the state has the wrong size or ``hashed`` is not a whole number of blocks.
    """
    size = v.word_bits // 8
    if len(state) != 8 * size or hashed % v.block_size:
        raise ValueError("bad intermediate state")
    words = [int.from_bytes(state[i:i + size], "big") for i in range(0, len(state), size)]
    length_field = 2 * size  # 64-bit length for SHA-256, 128-bit for SHA-384/512
    tail = rest + b"\x80"
    tail += bytes(-(len(tail) + length_field) % v.block_size)
    tail += ((hashed + len(rest)) * 8).to_bytes(length_field, "big")
    for i in range(0, len(tail), v.block_size):
        words = compress(v, words, tail[i:i + v.block_size])
    return state_bytes(v, words)[:v.digest_size]
