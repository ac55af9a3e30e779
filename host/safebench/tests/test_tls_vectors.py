"""The firmware's TLS test vectors (firmware/tests/vectors) checked with an independent library,
so a transcription error cannot make a firmware test pass or fail for the wrong reason."""

import hashlib

import pytest
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM
from cryptography.hazmat.primitives.hmac import HMAC
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand


def test_hkdf(vectors):
    for v in vectors.load("hkdf_rfc5869.txt"):
        prk = HMAC(v["salt"] or bytes(32), hashes.SHA256())
        prk.update(v["ikm"])
        assert prk.finalize() == v["prk"]
        okm = HKDF(hashes.SHA256(), len(v["okm"]), v["salt"] or None, v["info"]).derive(v["ikm"])
        assert okm == v["okm"]


def test_gcm(vectors):
    records = vectors.load("gcm_nist.txt")
    assert sum(v.get("result") == "F" for v in records) >= 2
    for v in records:
        aead = AESGCM(v["key"])
        if v.get("result") == "F":
            with pytest.raises(InvalidTag):
                aead.decrypt(v["iv"], v["ct"] + v["tag"], v["aad"] or None)
        else:
            assert aead.encrypt(v["iv"], v["pt"], v["aad"] or None) == v["ct"] + v["tag"]


def test_ccm(vectors):
    for v in vectors.load("ccm_nist.txt"):
        assert AESCCM(v["key"], v["tlen"]).encrypt(v["nonce"], v["pt"], v["aad"] or None) == v["ct"]


def test_ecdsa(vectors):
    records = vectors.load("ecdsa_p256_nist.txt")
    assert {v["result"] for v in records} == {"P", "F"}
    for v in records:
        numbers = ec.EllipticCurvePublicNumbers(int.from_bytes(v["qx"], "big"), int.from_bytes(v["qy"], "big"),
                                                ec.SECP256R1())
        sig = encode_dss_signature(int.from_bytes(v["r"], "big"), int.from_bytes(v["s"], "big"))
        try:
            numbers.public_key().verify(sig, v["msg"], ec.ECDSA(hashes.SHA256()))
            ok = True
        except (InvalidSignature, ValueError):
            ok = False
        assert ok == (v["result"] == "P"), v["msg"][:8].hex()
        if "d" in v:
            key = ec.derive_private_key(int.from_bytes(v["d"], "big"), ec.SECP256R1())
            assert key.public_key().public_numbers() == numbers


def _label(secret, label, context, length):
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + bytes([len(context)]) + context
    return HKDFExpand(hashes.SHA256(), length, info).derive(secret)


def test_rfc8448(vectors):
    (v,) = vectors.load("rfc8448_1rtt.txt")
    th = hashlib.sha256(v["client_hello"] + v["server_hello"]).digest()
    assert _label(v["handshake_secret"], b"c hs traffic", th, 32) == v["c_hs_traffic"]
    assert _label(v["s_hs_traffic"], b"key", b"", 16) == v["s_hs_key"]
    record = v["server_flight_record"]
    plain = AESGCM(v["s_hs_key"]).decrypt(v["s_hs_iv"], record[5:], record[:5])
    flight = v["encrypted_extensions"] + v["certificate"] + v["certificate_verify"] + v["server_finished"]
    assert plain == flight + b"\x16"
    record = v["client_data_record"]
    assert AESGCM(v["c_ap_key"]).decrypt(v["c_ap_iv"], record[5:], record[:5]) == v["application_data"] + b"\x17"
