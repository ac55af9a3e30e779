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
