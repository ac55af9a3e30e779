# TLV parsing of real cards' answers: 1- and 2-byte signature length forms.
from iotsafe import find_tlv

SIG = bytes(range(64))


def test_signature_one_byte_length():
    assert find_tlv(b"\x33\x40" + SIG, 0x33) == SIG


def test_signature_two_byte_length():
    assert find_tlv(b"\x33\x00\x40" + SIG, 0x33) == SIG


def test_file_size_in_info_record():
    rec = bytes.fromhex("730230318302000160010121010220020040")
    assert find_tlv(rec, 0x20) == b"\x00\x40"
    assert find_tlv(rec, 0x99) is None


# The object list a Thales MVP card returned (docs/iotsafe.md §9.1, trace 2): unwrapped records,
# with the card's `92 02 04` (length 2, one value byte) in every key record.
MVP_OBJECTS = bytes.fromhex(
    "74023131840200026001024A01014B01134E0103610107920204910200076F0101"
    "75023131850200026001024A01014B01134E0103610107920204910200076F0101"
    "75023232850200036001024A01004B01134E0103610107920204910200076F0101"
    "73023031830200016001014A01012101012002004076023333860200046001034A01004B01A061010C940102")


def test_thales_mvp_object_list():
    from iotsafe import parse_records

    recs = parse_records(MVP_OBJECTS)
    assert [(r["kind"], r["id"], r["label"]) for r in recs] == [
        ("private_key", b"\x00\x02", b"11"), ("public_key", b"\x00\x02", b"11"),
        ("public_key", b"\x00\x03", b"22"), ("file", b"\x00\x01", b"01"), ("secret_key", b"\x00\x04", b"33")]
    assert recs[0]["attributes"][0x92] == b"\x04"  # the quirk read as one byte
    assert recs[0]["attributes"][0x91] == b"\x00\x07"
    assert recs[3]["attributes"][0x20] == b"\x00\x40"
    assert recs[2]["attributes"][0x4A] == b"\x00"


def test_wrapped_object_list():
    from iotsafe import parse_records

    rec = bytes.fromhex("730230318302000160010120020040")
    per_object = b"\xC3" + bytes((len(rec),)) + rec
    recs = parse_records(per_object + per_object)
    assert len(recs) == 2 and recs[1]["id"] == b"\x00\x01"


def test_public_point_forms():
    from iotsafe import public_point

    point = b"\x04" + bytes(range(64))
    wrapped = b"\x34\x45\x49\x43\x86\x41" + point
    assert public_point(b"\x84\x01\x04\x85\x01\x04" + wrapped) == point
    assert public_point(wrapped) == point
    assert public_point(point) == point
