# TLS 1.3 handshake messages (RFC 8446 section 4): the client's messages built, the server's parsed
# and checked, the transcript hash, and the framing of messages inside handshake records.
#
# Parsers return plain values and raise TLSError (with the alert to send) on anything malformed or
# not offered; the state machine that calls them is in tls13.py.
import hashlib

from micropython import const
from tls_record import (
    DECODE_ERROR,
    HANDSHAKE_FAILURE,
    ILLEGAL_PARAMETER,
    MISSING_EXTENSION,
    PROTOCOL_VERSION,
    UNSUPPORTED_EXTENSION,
    TLSError,
)

AES_128_GCM_SHA256 = const(0x1301)
AES_128_CCM_SHA256 = const(0x1304)
SUITES = {AES_128_GCM_SHA256: "TLS_AES_128_GCM_SHA256", AES_128_CCM_SHA256: "TLS_AES_128_CCM_SHA256"}
SECP256R1 = const(0x0017)
ECDSA_P256_SHA256 = const(0x0403)

CLIENT_HELLO = const(1)
SERVER_HELLO = const(2)
NEW_SESSION_TICKET = const(4)
ENCRYPTED_EXTENSIONS = const(8)
CERTIFICATE = const(11)
CERTIFICATE_REQUEST = const(13)
CERTIFICATE_VERIFY = const(15)
FINISHED = const(20)
KEY_UPDATE = const(24)
_MESSAGE_HASH = const(254)
_MAX_MESSAGE = const(16384)

_EXT_SERVER_NAME = const(0)
_EXT_MAX_FRAGMENT = const(1)
_EXT_GROUPS = const(10)
_EXT_SIG_ALGS = const(13)
_EXT_RECORD_SIZE_LIMIT = const(28)
_EXT_SUPPORTED_VERSIONS = const(43)
_EXT_COOKIE = const(44)
_EXT_KEY_SHARE = const(51)
_MFL_CODES = {512: 1, 1024: 2, 2048: 3, 4096: 4}  # RFC 6066 max_fragment_length

# SHA-256("HelloRetryRequest"): a ServerHello with this random is a HelloRetryRequest
_HRR_RANDOM = (b"\xcf\x21\xad\x74\xe5\x9a\x61\x11\xbe\x1d\x8c\x02\x1e\x65\xb8\x91"
               b"\xc2\xa2\x11\x16\x7a\xbb\x8c\x5e\x07\x9e\x09\xe2\xc8\xa8\x33\x9c")
_CV_PAD = b" " * 64


def u16(n):
    return bytes((n >> 8, n & 0xFF))


def u24(n):
    return bytes((n >> 16, (n >> 8) & 0xFF, n & 0xFF))


def message(kind, body):
    return bytes((kind,)) + u24(len(body)) + body


def _ext(kind, body):
    return u16(kind) + u16(len(body)) + body


def is_ip(name):
    parts = name.split(".")
    return ":" in name or (len(parts) == 4 and all(p.isdigit() for p in parts))


def signed_content(server, transcript_hash):
    """SHA-256 of what a TLS 1.3 CertificateVerify signs (RFC 8446 section 4.4.3)."""
    ctx = b"TLS 1.3, server CertificateVerify\x00" if server else b"TLS 1.3, client CertificateVerify\x00"
    return hashlib.sha256(_CV_PAD + ctx + transcript_hash).digest()


class Reader:
    """Bounds-checked reads from a message body; anything short is a decode_error."""

    def __init__(self, data, what):
        self.b = data
        self.i = 0
        self.what = what

    def take(self, n):
        if self.i + n > len(self.b):
            raise TLSError(DECODE_ERROR, "decode error: %s is truncated" % self.what)
        v = self.b[self.i:self.i + n]
        self.i += n
        return v

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        v = self.take(2)
        return (v[0] << 8) | v[1]

    def vec(self, size_bytes):
        v = self.take(size_bytes)
        n = v[0] if size_bytes == 1 else (v[0] << 8) | v[1] if size_bytes == 2 else (v[0] << 16) | (v[1] << 8) | v[2]
        return self.take(n)

    def left(self):
        return len(self.b) - self.i

    def end(self):
        if self.i != len(self.b):
            raise TLSError(DECODE_ERROR, "decode error: trailing bytes in %s" % self.what)


def _extensions(data, what, allowed):
    """{type: body}; a repeated extension, or one not in `allowed`, is fatal."""
    r = Reader(data, what)
    out = {}
    while r.left():
        kind = r.u16()
        if kind in out:
            raise TLSError(ILLEGAL_PARAMETER, "illegal parameter: %s repeats extension %d" % (what, kind))
        if allowed is not None and kind not in allowed:
            raise TLSError(UNSUPPORTED_EXTENSION, "unsupported extension %d in %s" % (kind, what))
        out[kind] = r.vec(2)
    return out


class Transcript:
    """The running transcript hash. MicroPython's sha256 can be neither copied nor read twice, so
    several hashes are fed in parallel and each snapshot finalises one of them."""

    def __init__(self, snapshots):
        self._hashes = [hashlib.sha256() for _ in range(snapshots)]

    def update(self, data):
        for h in self._hashes:
            h.update(data)

    def snapshot(self):
        return self._hashes.pop().digest()

    def restart_for_retry(self, snapshots):
        """After a HelloRetryRequest the transcript starts with message_hash(ClientHello1)."""
        first = self.snapshot()
        self._hashes = [hashlib.sha256() for _ in range(snapshots)]
        self.update(message(_MESSAGE_HASH, first))


class Framer:
    """Handshake messages out of handshake records: sliced when packed, reassembled when split.
    `records()` returns the next handshake record's plaintext."""

    def __init__(self, records):
        self._records = records
        self._view = memoryview(b"")
        self._acc = None

    def at_record_end(self):
        return not len(self._view) and self._acc is None

    def next(self):
        """(type, body, whole message) of the next handshake message, as memoryviews."""
        while True:
            v = self._view
            if self._acc is None and len(v) >= 4:
                n = (v[1] << 16) | (v[2] << 8) | v[3]
                if len(v) >= 4 + n:
                    self._view = v[4 + n:]
                    return v[0], v[4:4 + n], v[:4 + n]
            if len(v):  # a partial message: collect it (the record buffer is reused by the next read)
                if self._acc is None:
                    self._acc = bytearray()
                self._acc += v
                self._view = memoryview(b"")
            acc = self._acc
            if acc is not None and len(acc) >= 4:
                n = (acc[1] << 16) | (acc[2] << 8) | acc[3]
                if n > _MAX_MESSAGE:
                    raise TLSError(DECODE_ERROR, "decode error: %d-byte handshake message" % n)
                if len(acc) >= 4 + n:
                    self._acc = None
                    mv = memoryview(acc)
                    self._view = mv[4 + n:]
                    return acc[0], mv[4:4 + n], mv[:4 + n]
            self._view = self._records()


# ---- the client's messages ------------------------------------------------------------------------

def client_hello(random, suites, server_name, share, cookie, record_limit):
    exts = b""
    if server_name and not is_ip(server_name):  # RFC 6066: no IP literals in server_name
        host = server_name.encode()
        entry = b"\x00" + u16(len(host)) + host
        exts += _ext(_EXT_SERVER_NAME, u16(len(entry)) + entry)
    exts += _ext(_EXT_SUPPORTED_VERSIONS, b"\x02\x03\x04")
    exts += _ext(_EXT_GROUPS, b"\x00\x02" + u16(SECP256R1))
    exts += _ext(_EXT_SIG_ALGS, b"\x00\x02" + u16(ECDSA_P256_SHA256))
    entry = u16(SECP256R1) + u16(len(share)) + share if share is not None else b""
    exts += _ext(_EXT_KEY_SHARE, u16(len(entry)) + entry)
    exts += _ext(_EXT_RECORD_SIZE_LIMIT, u16(record_limit + 1))  # RFC 8449: counts the content type byte
    if record_limit in _MFL_CODES:  # for servers without record_size_limit (OpenSSL); RFC 8449 section 5
        exts += _ext(_EXT_MAX_FRAGMENT, bytes((_MFL_CODES[record_limit],)))
    if cookie is not None:
        exts += _ext(_EXT_COOKIE, u16(len(cookie)) + cookie)
    cs = b"".join(u16(s) for s in suites)
    body = b"\x03\x03" + random + b"\x00" + u16(len(cs)) + cs + b"\x01\x00" + u16(len(exts)) + exts
    return message(CLIENT_HELLO, body)


def client_certificate(context, cert):
    return message(CERTIFICATE, bytes((len(context),)) + bytes(context) + u24(len(cert) + 5) + u24(len(cert))
                   + cert + b"\x00\x00")


def client_certificate_verify(sig_der):
    return message(CERTIFICATE_VERIFY, u16(ECDSA_P256_SHA256) + u16(len(sig_der)) + sig_der)


# ---- the server's messages ------------------------------------------------------------------------

def server_hello(body, suites):
    """{"retry", "suite", "group", "point" (ServerHello), "cookie" (HelloRetryRequest)}."""
    r = Reader(body, "ServerHello")
    r.u16()  # legacy_version: the version is in supported_versions
    retry = bytes(r.take(32)) == _HRR_RANDOM
    if len(r.vec(1)):
        raise TLSError(ILLEGAL_PARAMETER, "illegal parameter: session id echo we did not send")
    suite = r.u16()
    if r.u8() != 0:
        raise TLSError(ILLEGAL_PARAMETER, "illegal parameter: compression")
    exts = _extensions(r.vec(2), "ServerHello", None)
    r.end()
    version = exts.get(_EXT_SUPPORTED_VERSIONS)
    if version is None or bytes(version) != b"\x03\x04":
        raise TLSError(PROTOCOL_VERSION, "protocol version: the server does not speak TLS 1.3")
    if suite not in suites:
        raise TLSError(ILLEGAL_PARAMETER, "unsupported cipher suite: the server chose %04x, which was not "
                                          "offered" % suite)
    allowed = (_EXT_SUPPORTED_VERSIONS, _EXT_KEY_SHARE, _EXT_COOKIE) if retry else (
        _EXT_SUPPORTED_VERSIONS, _EXT_KEY_SHARE)
    for kind in exts:
        if kind not in allowed:
            raise TLSError(UNSUPPORTED_EXTENSION, "unsupported extension %d in ServerHello" % kind)
    out = {"retry": retry, "suite": suite}
    ks = exts.get(_EXT_KEY_SHARE)
    if ks is not None:
        k = Reader(ks, "key_share")
        out["group"] = k.u16()
        if not retry:
            out["point"] = bytes(k.vec(2))
        k.end()
    elif not retry:
        raise TLSError(MISSING_EXTENSION, "missing extension: key_share (PSK-only handshakes are not supported)")
    if _EXT_COOKIE in exts:
        c = Reader(exts[_EXT_COOKIE], "cookie")
        out["cookie"] = bytes(c.vec(2))
        c.end()
    return out


def encrypted_extensions(body, record_limit):
    """The server's record size limit for what we send: (plaintext bytes per record, limit agreed)."""
    r = Reader(body, "EncryptedExtensions")
    exts = _extensions(r.vec(2), "EncryptedExtensions",
                       (_EXT_SERVER_NAME, _EXT_MAX_FRAGMENT, _EXT_GROUPS, _EXT_RECORD_SIZE_LIMIT))
    r.end()
    limit = exts.get(_EXT_RECORD_SIZE_LIMIT)
    if limit is not None:
        peer = (limit[0] << 8) | limit[1] if len(limit) == 2 else 0
        if peer < 64:
            raise TLSError(ILLEGAL_PARAMETER, "illegal parameter: record_size_limit")
        return min(record_limit, peer - 1), True
    mfl = exts.get(_EXT_MAX_FRAGMENT)
    if mfl is not None:
        if len(mfl) != 1 or mfl[0] != _MFL_CODES.get(record_limit):
            raise TLSError(ILLEGAL_PARAMETER, "illegal parameter: max_fragment_length echo differs")
        return record_limit, True
    return record_limit, False


def certificate_request(body):
    """The request context, once we know the server accepts our signature algorithm."""
    r = Reader(body, "CertificateRequest")
    context = bytes(r.vec(1))
    exts = _extensions(r.vec(2), "CertificateRequest", None)
    r.end()
    algs = exts.get(_EXT_SIG_ALGS)
    if algs is None:
        raise TLSError(MISSING_EXTENSION, "missing extension: signature_algorithms in CertificateRequest")
    listed = Reader(algs, "signature_algorithms").vec(2)
    for i in range(0, len(listed) - 1, 2):
        if (listed[i] << 8) | listed[i + 1] == ECDSA_P256_SHA256:
            return context
    raise TLSError(HANDSHAKE_FAILURE, "handshake failure: the server does not accept ecdsa_secp256r1_sha256 "
                                      "client signatures")


def certificate_list(body):
    """The server's certificates (DER, leaf first) as memoryviews into the message."""
    r = Reader(body, "Certificate")
    if len(r.vec(1)):
        raise TLSError(ILLEGAL_PARAMETER, "illegal parameter: server certificate_request_context")
    entries = Reader(r.vec(3), "certificate_list")
    r.end()
    chain = []
    while entries.left():
        chain.append(entries.vec(3))
        entries.vec(2)  # per-certificate extensions (OCSP, SCT): not used
    return chain


def certificate_verify(body):
    """The DER signature of the server's CertificateVerify (ecdsa_secp256r1_sha256 only)."""
    r = Reader(body, "CertificateVerify")
    alg = r.u16()
    sig = r.vec(2)
    r.end()
    if alg != ECDSA_P256_SHA256:
        raise TLSError(ILLEGAL_PARAMETER, "illegal parameter: CertificateVerify algorithm %04x" % alg)
    return sig
