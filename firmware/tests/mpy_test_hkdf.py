# HMAC-SHA256 / HKDF against RFC 5869 (test cases 1-3) and the TLS 1.3 labels against RFC 8448.
import hkdf
import tvectors


def test_rfc5869():
    for v in tvectors.load("hkdf_rfc5869.txt"):
        prk = hkdf.extract(v["salt"], v["ikm"])
        assert prk == v["prk"]
        assert hkdf.expand(prk, v["info"], len(v["okm"])) == v["okm"]


def test_hmac_long_key_and_parts():
    # a key longer than the block is hashed first; parts are just concatenated
    key = bytes(range(100))
    assert hkdf.hmac_sha256(key, b"ab", b"c") == hkdf.hmac_sha256(key, b"abc")
    assert hkdf.hmac_sha256(key, b"abc") != hkdf.hmac_sha256(key[:64], b"abc")


def test_expand_too_long():
    try:
        hkdf.expand(bytes(32), b"", 255 * 32 + 1)
    except ValueError:
        return
    raise AssertionError("no error")


def test_tls13_labels_rfc8448():
    (v,) = tvectors.load("rfc8448_1rtt.txt")
    import hashlib

    empty = hashlib.sha256(b"").digest()
    early = hkdf.extract(b"", bytes(32))
    assert early == v["early_secret"]
    derived = hkdf.derive_secret(early, b"derived", empty)
    assert derived == v["derived_early"]
    assert hkdf.extract(derived, v["ecdhe"]) == v["handshake_secret"]
    th = hashlib.sha256(v["client_hello"] + v["server_hello"]).digest()
    assert hkdf.derive_secret(v["handshake_secret"], b"c hs traffic", th) == v["c_hs_traffic"]
    assert hkdf.derive_secret(v["handshake_secret"], b"s hs traffic", th) == v["s_hs_traffic"]
    assert hkdf.derive_secret(v["handshake_secret"], b"derived", empty) == v["derived_handshake"]
    assert hkdf.extract(v["derived_handshake"], bytes(32)) == v["master_secret"]
    assert hkdf.expand_label(v["s_hs_traffic"], b"key", b"", 16) == v["s_hs_key"]
    assert hkdf.expand_label(v["s_hs_traffic"], b"iv", b"", 12) == v["s_hs_iv"]
    assert hkdf.expand_label(v["c_hs_traffic"], b"key", b"", 16) == v["c_hs_key"]
    assert hkdf.expand_label(v["c_hs_traffic"], b"iv", b"", 12) == v["c_hs_iv"]
