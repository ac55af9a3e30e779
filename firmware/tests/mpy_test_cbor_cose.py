# CBOR encoding against RFC 8949 Appendix A vectors, and the COSE_Sign1 layout of RFC 9052.
from binascii import hexlify

import cbor
import cose

VECTORS = (  # (value, encoding) from RFC 8949 Appendix A
    (0, "00"), (23, "17"), (24, "1818"), (100, "1864"), (1000, "1903e8"), (1000000, "1a000f4240"),
    (1000000000000, "1b000000e8d4a51000"), (-1, "20"), (-100, "3863"), (-1000, "3903e7"),
    (1.1, "fb3ff199999999999a"), (False, "f4"), (True, "f5"), (None, "f6"), (b"", "40"),
    (b"\x01\x02\x03\x04", "4401020304"), ("", "60"), ("a", "6161"), ("IETF", "6449455446"),
    ([], "80"), ([1, 2, 3], "83010203"), ([1, [2, 3], [4, 5]], "8301820203820405"),
)


def test_rfc8949_vectors():
    for value, expected in VECTORS:
        got = hexlify(cbor.item(bytearray(), value)).decode()
        assert got == expected, (value, got)


def test_map_keeps_order():
    assert hexlify(cbor.pairs(bytearray(), ((1, 2), (3, 4)))) == b"a201020304"
    assert hexlify(cbor.pairs(bytearray(), ((3, 4), (1, 2)))) == b"a203040102"


def test_sign1_layout():
    seen = []

    def signer(digest):
        seen.append(digest)
        return bytes(64)

    msg = cose.sign1(b"payload", b"kid", signer)
    # tag 18, array of 4: protected bstr(A10126), {4: h'6B6964'}, payload, 64-byte signature
    assert msg[:1] == b"\xd2" and msg[1:2] == b"\x84"
    assert msg[2:6] == b"\x43\xa1\x01\x26"
    assert msg[6:12] == b"\xa1\x04\x43kid"
    assert msg[12:20] == b"\x47payload"
    assert msg[20:22] == b"\x58\x40" and len(msg) == 22 + 64
    import hashlib

    to_sign = cbor.item(bytearray(), ["Signature1", b"\xa1\x01\x26", b"", b"payload"])
    assert seen == [hashlib.sha256(to_sign).digest()]


def test_senml_pack_numbers_the_reading():
    import reading

    pack = reading.senml("8944", 1764061500, 7, "temperature", "Cel", 21.5, time=1764061507)
    # [{bn, bt, n, u, v}, {n: "epoch", v: epoch}, {n: "seq", v: seq}]
    expected = bytearray(b"\x83")  # an array of 3 records
    cbor.pairs(expected, ((-2, "urn:dev:iccid:8944:"), (-3, 1764061507), (0, "temperature"), (1, "Cel"), (2, 21.5)))
    cbor.pairs(expected, ((0, "epoch"), (2, 1764061500)))
    cbor.pairs(expected, ((0, "seq"), (2, 7)))
    assert pack == bytes(expected)
    assert b"\x00\x65epoch\x02\x1a" in pack and pack.endswith(b"\xa2\x00\x63seq\x02\x07")
