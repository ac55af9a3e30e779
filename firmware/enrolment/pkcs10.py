# A PKCS#10 certificate request (RFC 2986) for a P-256 key on the SIM, signed by the SIM: DER built here,
# only what an EST server needs (a commonName, the key, ecdsa-with-SHA256).
import hashlib

_OID_CN = b"\x06\x03\x55\x04\x03"
_SPKI_P256 = b"\x30\x13\x06\x07\x2a\x86\x48\xce\x3d\x02\x01\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07"
_ECDSA_SHA256 = b"\x30\x0a\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02"


def der(tag, value):
    """One DER element (definite length, up to 64 KB)."""
    n = len(value)
    if n < 0x80:
        head = bytes((tag, n))
    elif n < 0x100:
        head = bytes((tag, 0x81, n))
    else:
        head = bytes((tag, 0x82, n >> 8, n & 0xFF))
    return head + value


def request_info(common_name, point):
    """CertificationRequestInfo: version 0, subject CN=`common_name`, the key 04||X||Y, no attributes."""
    subject = der(0x30, der(0x31, der(0x30, _OID_CN + der(0x0C, common_name.encode()))))
    spki = der(0x30, _SPKI_P256 + der(0x03, b"\x00" + point))
    return der(0x30, b"\x02\x01\x00" + subject + spki + b"\xa0\x00")


def request(common_name, point, sign):
    """The request's DER; `sign(digest)`: the SIM's raw r||s over SHA-256 of the request info."""
    from x509 import ecdsa_sig_encode

    info = request_info(common_name, point)
    sig = ecdsa_sig_encode(sign(hashlib.sha256(info).digest()))
    return der(0x30, info + _ECDSA_SHA256 + der(0x03, b"\x00" + sig))
