# NIST P-256 (secp256r1): point checks, scalar multiplication and ECDSA-SHA256 verification.
#
# Only public-key work is meant to run here (certificate and CertificateVerify signatures): the
# device's private key and its ephemeral ECDH keys live in the SIM. Jacobian coordinates with the
# a = -3 doubling and mixed additions; verification uses Shamir's trick (u1*G + u2*Q in one pass).
# Scalars are walked over a fixed 256 bits because MicroPython has no int.bit_length().
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5


def on_curve(x, y):
    return 0 <= x < P and 0 <= y < P and (y * y - (x * x * x - 3 * x + B)) % P == 0


def decode_point(data):
    """(x, y) from an uncompressed point 04||X||Y; ValueError unless it is a point of the curve."""
    if len(data) != 65 or data[0] != 4:
        raise ValueError("not an uncompressed P-256 point")
    x = int.from_bytes(data[1:33], "big")
    y = int.from_bytes(data[33:65], "big")
    if not on_curve(x, y):
        raise ValueError("point is not on P-256")
    return x, y


def encode_point(x, y):
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


def _double(x1, y1, z1):
    if z1 == 0 or y1 == 0:
        return 0, 1, 0
    delta = z1 * z1 % P
    gamma = y1 * y1 % P
    beta = x1 * gamma % P
    alpha = 3 * (x1 - delta) * (x1 + delta) % P
    x3 = (alpha * alpha - 8 * beta) % P
    z3 = ((y1 + z1) * (y1 + z1) - gamma - delta) % P
    y3 = (alpha * (4 * beta - x3) - 8 * gamma * gamma) % P
    return x3, y3, z3


def _add_affine(x1, y1, z1, x2, y2):
    """Jacobian (x1, y1, z1) + affine (x2, y2)."""
    if z1 == 0:
        return x2, y2, 1
    z1z1 = z1 * z1 % P
    u2 = x2 * z1z1 % P
    s2 = y2 * z1 * z1z1 % P
    h = (u2 - x1) % P
    r = 2 * (s2 - y1) % P
    if h == 0:
        return _double(x1, y1, z1) if r == 0 else (0, 1, 0)
    hh = h * h % P
    i = 4 * hh % P
    j = h * i % P
    v = x1 * i % P
    x3 = (r * r - j - 2 * v) % P
    y3 = (r * (v - x3) - 2 * y1 * j) % P
    z3 = ((z1 + h) * (z1 + h) - z1z1 - hh) % P
    return x3, y3, z3


def _affine(x, y, z):
    if z == 0:
        return None
    zi = pow(z, P - 2, P)
    zi2 = zi * zi % P
    return x * zi2 % P, y * zi2 * zi % P


def mul(k, x, y):
    """k * (x, y) as an affine point, or None for the point at infinity."""
    k %= N
    rx, ry, rz = 0, 1, 0
    for i in range(255, -1, -1):
        rx, ry, rz = _double(rx, ry, rz)
        if (k >> i) & 1:
            rx, ry, rz = _add_affine(rx, ry, rz, x, y)
    return _affine(rx, ry, rz)


def mul_base(k):
    return mul(k, GX, GY)


def verify(x, y, digest, r, s):
    """ECDSA verification of (r, s) over a SHA-256 digest with the public key (x, y)."""
    if not (0 < r < N and 0 < s < N) or not on_curve(x, y):
        return False
    e = int.from_bytes(digest, "big") % N
    w = pow(s, N - 2, N)
    u1 = e * w % N
    u2 = r * w % N
    both = _affine(*_add_affine(x, y, 1, GX, GY))  # G + Q, added when both bits are set
    rx, ry, rz = 0, 1, 0
    for i in range(255, -1, -1):
        rx, ry, rz = _double(rx, ry, rz)
        b = ((u1 >> i) & 1) | (((u2 >> i) & 1) << 1)
        if b == 1:
            rx, ry, rz = _add_affine(rx, ry, rz, GX, GY)
        elif b == 2:
            rx, ry, rz = _add_affine(rx, ry, rz, x, y)
        elif b == 3 and both is not None:
            rx, ry, rz = _add_affine(rx, ry, rz, both[0], both[1])
    point = _affine(rx, ry, rz)
    return point is not None and point[0] % N == r
