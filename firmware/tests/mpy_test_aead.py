# AES-128-GCM and AES-CCM against NIST vectors; tampering is detected and releases no plaintext.
import tvectors
from aead import AesCcm, AesGcm, AuthError


def _open_fails(aead, nonce, aad, buf, n):
    try:
        aead.open(nonce, aad, buf, n)
    except AuthError:
        return True
    return False


def test_gcm_nist():
    records = tvectors.load("gcm_nist.txt")
    for v in records:
        sealed = v["ct"] + v["tag"]
        if v.get("result") == "F":
            buf = bytearray(sealed)
            assert _open_fails(AesGcm(v["key"]), v["iv"], v["aad"], buf, len(buf))
            assert buf == bytearray(sealed)  # GCM checks before decrypting: nothing was released
            continue
        buf = bytearray(v["pt"]) + bytearray(16)
        assert AesGcm(v["key"]).seal(v["iv"], v["aad"], buf, len(v["pt"])) == len(sealed)
        assert buf == sealed, v["key"]
        assert AesGcm(v["key"]).open(v["iv"], v["aad"], buf, len(buf)) == len(v["pt"])
        assert buf[:len(v["pt"])] == v["pt"]


def test_ccm_nist():
    for v in tvectors.load("ccm_nist.txt"):
        n = len(v["pt"])
        buf = bytearray(v["pt"]) + bytearray(v["tlen"])
        assert AesCcm(v["key"], v["tlen"]).seal(v["nonce"], v["aad"], buf, n) == len(v["ct"])
        assert buf == v["ct"], v["key"]
        assert AesCcm(v["key"], v["tlen"]).open(v["nonce"], v["aad"], buf, len(buf)) == n
        assert buf[:n] == v["pt"]


def test_tampering_is_detected():
    key, nonce, aad = bytes(range(16)), bytes(12), b"\x17\x03\x03\x04\x11"
    for make in (lambda: AesGcm(key), lambda: AesCcm(key)):
        msg = bytes(range(256)) * 4 + b"tail"  # several keystream chunks and a partial block
        sealed = bytearray(msg) + bytearray(16)
        make().seal(nonce, aad, sealed, len(msg))
        for pos in (0, 300, len(msg) - 1, len(msg) + 3):  # first, middle, last byte, tag
            buf = bytearray(sealed)
            buf[pos] ^= 0x80
            assert _open_fails(make(), nonce, aad, buf, len(buf))
            assert bytes(buf[:len(msg)]) != msg  # no plaintext left behind
        assert _open_fails(make(), nonce, b"\x17\x03\x03\x04\x12", bytearray(sealed), len(sealed))
        assert _open_fails(make(), b"\x01" + bytes(11), aad, bytearray(sealed), len(sealed))
        buf = bytearray(sealed)
        assert make().open(nonce, aad, buf, len(buf)) == len(msg) and bytes(buf[:len(msg)]) == msg


def test_wipe():
    g = AesGcm(bytes(range(16)))
    g.wipe()
    assert g._key == bytearray(16)
