# NIST P-256 (secp256r1): point checks, scalar multiplication and ECDSA-SHA256 verification.
#
# Only public-key work is meant to run here (certificate and CertificateVerify signatures): the
# device's private key and its ephemeral ECDH keys live in the SIM. Jacobian coordinates with the
# a = -3 doubling. Verification makes u1*G + u2*Q in one pass of 256 doublings with a sliding window
# over each scalar, about half the additions of a bit at a time, and a single modular inversion (1/s):
# on a Pico one costs about 40 doublings. Scalars are read as bytes: MicroPython has no
# int.bit_length(), and a shift of a big int allocates.
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


def _add(x1, y1, z1, x2, y2, z2):
    """Jacobian + Jacobian."""
    if z1 == 0:
        return x2, y2, z2
    if z2 == 0:
        return x1, y1, z1
    z1z1 = z1 * z1 % P
    z2z2 = z2 * z2 % P
    u1 = x1 * z2z2 % P
    s1 = y1 * z2 * z2z2 % P
    h = (x2 * z1z1 - u1) % P
    r = (y2 * z1 * z1z1 - s1) % P
    if h == 0:
        return _double(x1, y1, z1) if r == 0 else (0, 1, 0)
    hh = h * h % P
    hhh = h * hh % P
    v = u1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    y3 = (r * (v - x3) - s1 * hhh) % P
    return x3, y3, z1 * z2 * h % P


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


WINDOW = 4  # bits: 8 odd multiples of each point (the key's in Jacobian form: an inversion costs more)
_G_ODD = (  # G, 3G, ..., 15G as affine points (a test checks each against mul)
    (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
     0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5),
    (0x5ECBE4D1A6330A44C8F7EF951D4BF165E6C6B721EFADA985FB41661BC6E7FD6C,
     0x8734640C4998FF7E374B06CE1A64A2ECD82AB036384FB83D9A79B127A27D5032),
    (0x51590B7A515140D2D784C85608668FDFEF8C82FD1F5BE52421554A0DC3D033ED,
     0xE0C17DA8904A727D8AE1BF36BF8A79260D012F00D4D80888D1D0BB44FDA16DA4),
    (0x8E533B6FA0BF7B4625BB30667C01FB607EF9F8B8A80FEF5B300628703187B2A3,
     0x73EB1DBDE03318366D069F83A6F5900053C73633CB041B21C55E1A86C1F400B4),
    (0xEA68D7B6FEDF0B71878938D51D71F8729E0ACB8C2C6DF8B3D79E8A4B90949EE0,
     0x2A2744C972C9FCE787014A964A8EA0C84D714FEAA4DE823FE85A224A4DD048FA),
    (0x3ED113B7883B4C590638379DB0C21CDA16742ED0255048BF433391D374BC21D1,
     0x9099209ACCC4C8A224C843AFA4F4C68A090D04DA5E9889DAE2F8EEFCE82A3740),
    (0x177C837AE0AC495A61805DF2D85EE2FC792E284B65EAD58A98E15D9D46072C01,
     0x63BB58CD4EBEA558A24091ADB40F4E7226EE14C3A1FB4DF39C43BBE2EFC7BFD8),
    (0xF0454DC6971ABAE7ADFB378999888265AE03AF92DE3A0EF163668C63E59B9D5F,
     0xB5B93EE3592E2D1F4E6594E51F9643E62A3B21CE75B5FA3F47E59CDE0D034F36),
)


def _odd_multiples(x, y, count):
    """[(x, y, 1), 3(x, y), ..., (2*count - 1)(x, y)] in Jacobian coordinates."""
    two = _double(x, y, 1)
    points = [(x, y, 1)]
    for _ in range(count - 1):
        points.append(_add(*points[-1], *two))
    return points


def _windows(k, digits, shift):
    """Put the sliding-window digits of 0 <= k < 2**256 into `digits`, shifted: digits[i] >> shift & 15 is 0 or
    odd, and k = sum((digits[i] >> shift & 15) << i). Two scalars share one bytearray (WINDOW is 4)."""
    b = k.to_bytes(32, "big")
    i = 255
    while i >= 0:
        if not (b[31 - (i >> 3)] >> (i & 7)) & 1:
            i -= 1
            continue
        j = i - WINDOW + 1 if i >= WINDOW else 0
        while not (b[31 - (j >> 3)] >> (j & 7)) & 1:
            j += 1
        d = 0
        for t in range(i, j - 1, -1):
            d = (d << 1) | ((b[31 - (t >> 3)] >> (t & 7)) & 1)
        digits[j] |= d << shift
        i = j - 1


def verify(x, y, digest, r, s):
    """ECDSA verification of (r, s) over a SHA-256 digest with the public key (x, y)."""
    if not (0 < r < N and 0 < s < N) or not on_curve(x, y):
        return False
    e = int.from_bytes(digest, "big") % N
    w = pow(s, N - 2, N)
    q_odd = _odd_multiples(x, y, 1 << (WINDOW - 1))
    digits = bytearray(256)  # u1's digits in the low 4 bits, u2's in the high
    _windows(e * w % N, digits, 0)
    _windows(r * w % N, digits, 4)
    rx, ry, rz = 0, 1, 0
    for i in range(255, -1, -1):
        if rz:
            rx, ry, rz = _double(rx, ry, rz)
        d = digits[i]
        if d & 15:
            rx, ry, rz = _add_affine(rx, ry, rz, *_G_ODD[(d & 15) >> 1])
        if d >> 4:
            rx, ry, rz = _add(rx, ry, rz, *q_odd[d >> 5])
    if rz == 0:
        return False
    # x(R) = rx / rz^2 is r or r + N (mod P), compared without an inversion
    zz = rz * rz % P
    return rx == r * zz % P or (r + N < P and rx == (r + N) * zz % P)
