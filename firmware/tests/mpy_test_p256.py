# P-256 arithmetic and ECDSA verification against NIST CAVP (SigGen, SigVer); point validation.
import hashlib

import p256
import tvectors
from softkeys import sign_digest


def _i(b):
    return int.from_bytes(b, "big")


def test_sigver_and_siggen():
    records = tvectors.load("ecdsa_p256_nist.txt")
    for v in records:
        digest = hashlib.sha256(v["msg"]).digest()
        ok = p256.verify(_i(v["qx"]), _i(v["qy"]), digest, _i(v["r"]), _i(v["s"]))
        assert ok == (v["result"] == "P"), v["msg"][:4]
        if "d" in v:  # SigGen: the key pair, and the signature with NIST's k
            assert p256.mul_base(_i(v["d"])) == (_i(v["qx"]), _i(v["qy"]))
            assert sign_digest(_i(v["d"]), digest, _i(v["k"])) == (_i(v["r"]), _i(v["s"]))


def test_rejects_out_of_range_signatures():
    v = tvectors.load("ecdsa_p256_nist.txt")[0]
    digest = hashlib.sha256(v["msg"]).digest()
    x, y, r, s = _i(v["qx"]), _i(v["qy"]), _i(v["r"]), _i(v["s"])
    for bad_r, bad_s in ((0, s), (r, 0), (r + p256.N, s), (r, s + p256.N), (r + 1, s)):
        assert not p256.verify(x, y, digest, bad_r, bad_s)


def test_point_decoding():
    g = p256.encode_point(p256.GX, p256.GY)
    assert p256.decode_point(g) == (p256.GX, p256.GY)
    for bad in (g[:-1], b"\x02" + g[1:33], g[:-1] + bytes((g[-1] ^ 1,)), b"\x04" + bytes(64),
                b"\x04" + p256.P.to_bytes(32, "big") + g[33:]):
        try:
            p256.decode_point(bad)
        except ValueError:
            continue
        raise AssertionError("accepted a bad point")


def test_ecdh_agrees():
    a, b = 0x1234567890ABCDEF, 0xFEDCBA0987654321
    pa, pb = p256.mul_base(a), p256.mul_base(b)
    assert p256.mul(a, *pb) == p256.mul(b, *pa)
    assert p256.mul(p256.N, p256.GX, p256.GY) is None


def test_window_table_and_digits():
    for k, point in enumerate(p256._G_ODD):
        assert p256.mul(2 * k + 1, p256.GX, p256.GY) == point
    for k in (1, 2, 31, 32, 0x8000000000000000000000000000000000000000000000000000000000000001, p256.N - 1):
        for shift in (0, 4):
            digits = bytearray(256)
            p256._windows(k, digits, shift)
            digits = [d >> shift for d in digits]
            assert all(d == 0 or (d & 1 and d < 16) for d in digits)
            assert sum(d << i for i, d in enumerate(digits)) == k
