# The client side of EST (RFC 7030) over one TLS connection (HTTP/1.1, kept alive between the two requests an
# enrolment makes): /cacerts and /simpleenroll or /simplereenroll, base64 bodies, certs-only PKCS#7 answers.
from binascii import a2b_base64, b2a_base64

from rpc_codes import E_ENROLMENT
from x509 import CertError, tlv

PATH = "/.well-known/est/"
MAX_BODY = 8192  # a certificate or two in base64
_SIGNED_DATA = b"\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02"


class EnrolmentError(Exception):
    """The EST server refused the request (data: its HTTP status and reason) or answered what it may not."""

    code = E_ENROLMENT

    def __init__(self, text, status=None):
        super().__init__(text)
        self.data = {"status": status} if status else {}


def request(conn, host, method, operation, body=b"", content_type=None):
    """One request on `conn` (a TLS connection); returns the body of a 200 answer, EnrolmentError otherwise."""
    head = "%s %s%s HTTP/1.1\r\nHost: %s\r\n" % (method, PATH, operation, host)
    if body:
        head += "Content-Type: %s\r\nContent-Transfer-Encoding: base64\r\nContent-Length: %d\r\n" % (
            content_type, len(body))
    conn.write((head + "\r\n").encode())
    if body:
        conn.write(body)
    status_line = conn.readline(256)
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise EnrolmentError("the EST server answered %r, not HTTP" % status_line[:60])
    length = None
    while True:
        line = conn.readline(1024)
        if not line.endswith(b"\n"):
            raise EnrolmentError("the EST server's answer ends in its headers")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            length = int(value.strip())
    if length is None or length > MAX_BODY:
        raise EnrolmentError("the EST server's answer has no Content-Length up to %d bytes" % MAX_BODY)
    data = conn.read(length) if length else b""
    if len(data or b"") != length:
        raise EnrolmentError("the EST server's answer ends before its Content-Length")
    status = int(parts[1])
    if status != 200:
        reason = data.decode().strip() if data else (parts[2].decode().strip() if len(parts) > 2 else "")
        raise EnrolmentError("the EST server refused %s (HTTP %d): %s" % (operation, status, reason), status)
    return data


def certificates(b64):
    """The certificates (DER) of a base64 certs-only PKCS#7 (RFC 5652 SignedData, RFC 7030 §4.1.3)."""
    try:
        der = a2b_base64(b64)
        n = len(der)
        _, s, e = tlv(der, 0, n)  # ContentInfo
        _, os_, oe = tlv(der, s, e)
        if der[os_:oe] != _SIGNED_DATA:
            raise ValueError
        _, s, e = tlv(der, oe, e)  # [0] EXPLICIT
        _, s, e = tlv(der, s, e)  # SignedData
        _, _, s = tlv(der, s, e)  # version
        _, _, s = tlv(der, s, e)  # digestAlgorithms
        _, _, s = tlv(der, s, e)  # encapContentInfo
        tag, s, ce = tlv(der, s, e)
        if tag != 0xA0:  # [0] IMPLICIT certificates
            raise ValueError
        out = []
        while s < ce:
            _, _, ve = tlv(der, s, ce)
            out.append(der[s:ve])
            s = ve
        return out
    except (ValueError, IndexError, CertError):
        raise EnrolmentError("the EST server's answer is not a certs-only PKCS#7") from None


def encode(der):
    return b2a_base64(der)
