# The record layer, message framing and key schedule against the RFC 8448 1-RTT trace: decrypting the
# server's records and producing the client's records byte for byte.
import hashlib

import hkdf
import tls_messages
import tvectors
from aead import AesGcm
from fakesock import FakeSock
from tls_record import CT_ALERT, CT_APPDATA, CT_HANDSHAKE, Records, TLSError, buffers

V = tvectors.load("rfc8448_1rtt.txt")[0]
FLIGHT = V["encrypted_extensions"] + V["certificate"] + V["certificate_verify"] + V["server_finished"]


def _records(data=b"", piece=None):
    return Records(FakeSock(data, piece), buffers(2048))


def _keys(prefix):
    return AesGcm(V[prefix + "_key"]), bytearray(V[prefix + "_iv"])


def test_server_flight_decrypts():
    rec = _records(V["server_flight_record"], piece=7)  # the transport hands out 7 bytes at a time
    rec.set_reader(*_keys("s_hs"))
    ctype, data = rec.read()
    assert ctype == CT_HANDSHAKE and bytes(data) == FLIGHT


def test_messages_sliced_and_reassembled():
    for size in (len(FLIGHT), 1, 3, 40, 100, 457):  # whole, and split at awkward places (inside headers too)
        chunks = [memoryview(FLIGHT)[i:i + size] for i in range(0, len(FLIGHT), size)]

        hs = tls_messages.Framer(lambda c=chunks: c.pop(0))
        got = [hs.next()]
        assert hs.at_record_end() == (40 % size == 0)  # EncryptedExtensions is 40 bytes
        got += [hs.next() for _ in range(3)]
        assert [g[0] for g in got] == [8, 11, 15, 20]
        assert b"".join(bytes(g[2]) for g in got) == FLIGHT
        assert bytes(got[3][1]) == V["server_finished"][4:]
        assert hs.at_record_end() and not chunks


def test_finished_and_application_secrets():
    th = hashlib.sha256(V["client_hello"] + V["server_hello"] + FLIGHT[:-36]).digest()
    fk = hkdf.expand_label(V["s_hs_traffic"], b"finished", b"", 32)
    assert hkdf.hmac_sha256(fk, th) == V["server_finished"][4:]
    th = hashlib.sha256(V["client_hello"] + V["server_hello"] + FLIGHT).digest()
    assert hkdf.derive_secret(V["master_secret"], b"c ap traffic", th) == V["c_ap_traffic"]
    assert hkdf.derive_secret(V["master_secret"], b"s ap traffic", th) == V["s_ap_traffic"]
    fk = hkdf.expand_label(V["c_hs_traffic"], b"finished", b"", 32)
    assert hkdf.hmac_sha256(fk, th) == V["client_finished"][4:]
    assert hkdf.expand_label(V["c_ap_traffic"], b"key", b"", 16) == V["c_ap_key"]
    assert hkdf.expand_label(V["s_ap_traffic"], b"iv", b"", 12) == V["s_ap_iv"]


def test_transcript_snapshots():
    t = tls_messages.Transcript(3)
    t.update(V["client_hello"])
    t.update(V["server_hello"])
    assert t.snapshot() == hashlib.sha256(V["client_hello"] + V["server_hello"]).digest()
    t.update(FLIGHT)
    assert t.snapshot() == hashlib.sha256(V["client_hello"] + V["server_hello"] + FLIGHT).digest()


def test_client_records_byte_for_byte():
    rec = _records()
    rec.set_writer(*_keys("c_hs"))
    rec.write(CT_HANDSHAKE, V["client_finished"])
    rec.set_writer(*_keys("c_ap"))
    rec.write(CT_APPDATA, V["application_data"])
    rec.write(CT_ALERT, b"\x01\x00")
    assert rec.sock.sent == V["client_finished_record"] + V["client_data_record"] + V["client_close_record"]


def test_server_application_records():
    rec = _records(V["server_ticket_record"] + V["server_data_record"] + V["server_close_record"])
    rec.set_reader(*_keys("s_ap"))
    ctype, data = rec.read()
    assert ctype == CT_HANDSHAKE and bytes(data) == V["new_session_ticket"]
    ctype, data = rec.read()
    assert ctype == CT_APPDATA and bytes(data) == V["application_data"]
    ctype, data = rec.read()
    assert ctype == CT_ALERT and bytes(data) == b"\x01\x00"


def test_tampered_record_is_bad_record_mac():
    for pos in (2, 10, len(V["server_data_record"]) - 1):  # header (AAD), body, tag
        data = bytearray(V["server_ticket_record"] + V["server_data_record"])
        data[len(V["server_ticket_record"]) + pos] ^= 0x01
        rec = _records(data)
        rec.set_reader(*_keys("s_ap"))
        rec.read()
        try:
            rec.read()
        except TLSError as e:
            assert e.alert == 20 and str(e).startswith("bad record MAC"), e
            continue
        raise AssertionError("tampered record accepted")


def test_oversized_record_after_agreement():
    rec = _records(b"\x17\x03\x03\x09\x00" + bytes(0x900))
    rec.set_reader(*_keys("s_ap"))
    rec.limit_agreed = True
    try:
        rec.read()
    except TLSError as e:
        assert e.alert == 22
        return
    raise AssertionError("no record_overflow")


def test_wipe_clears_keys():
    rec = _records()
    aead, iv = _keys("c_ap")
    rec.set_writer(aead, iv)
    rec.wipe()
    assert iv == bytearray(12) and aead._key == bytearray(16) and rec.writer is None
