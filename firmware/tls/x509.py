# Minimal DER and X.509 for a TLS client: parse a certificate, walk a chain to one trust anchor, and
# check validity dates, the host name (subjectAltName only) and ECDSA P-256/SHA-256 signatures.
#
# Certificates are parsed in place (offsets into the DER, no copies of the big parts). The signature
# check is a callable verify(x, y, digest, r, s) -> bool, so it can run in firmware (p256.verify) or
# on the SIM. Anything this module does not understand makes the certificate fail, never pass.
import hashlib

_SEQ = 0x30
_OID_ECDSA_SHA256 = b"\x2a\x86\x48\xce\x3d\x04\x03\x02"
_OID_EC_PUBLIC_KEY = b"\x2a\x86\x48\xce\x3d\x02\x01"
_OID_P256 = b"\x2a\x86\x48\xce\x3d\x03\x01\x07"
_OID_SERVER_AUTH = b"\x2b\x06\x01\x05\x05\x07\x03\x01"
_OID_ANY_EKU = b"\x55\x1d\x25\x00"
_EXT_BASIC = b"\x55\x1d\x13"
_EXT_KEY_USAGE = b"\x55\x1d\x0f"
_EXT_SAN = b"\x55\x1d\x11"
_EXT_EKU = b"\x55\x1d\x25"
_EXT_IGNORED = (b"\x55\x1d\x0e", b"\x55\x1d\x23")  # subject / authority key identifiers
_NAME_ATTRS = ((b"\x55\x04\x03", "CN"), (b"\x55\x04\x0a", "O"), (b"\x55\x04\x0b", "OU"), (b"\x55\x04\x06", "C"))
MAX_CHAIN = 4

# reasons of CertError, mapped to TLS alerts by the caller
MALFORMED = "bad_certificate"
UNSUPPORTED = "unsupported_certificate"
UNKNOWN_CA = "unknown_ca"
EXPIRED = "certificate_expired"
BAD_SIGNATURE = "bad_signature"
BAD_HOST = "bad_host_name"
BAD_USAGE = "bad_usage"


class CertError(Exception):
    def __init__(self, reason, text):
        super().__init__(text)
        self.reason = reason


def tlv(buf, off, end):
    """(tag, value start, value end) of the DER element at buf[off:end]."""
    if off + 2 > end:
        raise CertError(MALFORMED, "truncated DER")
    tag, n = buf[off], buf[off + 1]
    off += 2
    if n & 0x80:
        k = n & 0x7F
        if not 1 <= k <= 3 or off + k > end:
            raise CertError(MALFORMED, "bad DER length")
        n = int.from_bytes(buf[off:off + k], "big")
        off += k
    if off + n > end:
        raise CertError(MALFORMED, "DER element runs past its parent")
    return tag, off, off + n


def _expect(buf, off, end, tag, what):
    t, s, e = tlv(buf, off, end)
    if t != tag:
        raise CertError(MALFORMED, "expected " + what)
    return s, e


def _uint(buf, s, e):
    if e == s or buf[s] & 0x80:
        raise CertError(MALFORMED, "bad DER INTEGER")
    return int.from_bytes(buf[s:e], "big")


def ecdsa_sig_decode(der):
    """(r, s) from a DER ECDSA-Sig-Value."""
    s0, e0 = _expect(der, 0, len(der), _SEQ, "ECDSA signature")
    if e0 != len(der):
        raise CertError(MALFORMED, "trailing bytes after the signature")
    rs, re = _expect(der, s0, e0, 0x02, "r")
    ss, se = _expect(der, re, e0, 0x02, "s")
    if se != e0:
        raise CertError(MALFORMED, "bad ECDSA signature")
    return _uint(der, rs, re), _uint(der, ss, se)


def ecdsa_sig_encode(raw):
    """DER ECDSA-Sig-Value from raw r||s (64 bytes), as TLS puts it on the wire."""
    out = b""
    for part in (raw[:32], raw[32:64]):
        v = bytes(part).lstrip(b"\x00") or b"\x00"
        if v[0] & 0x80:
            v = b"\x00" + v
        out += bytes((0x02, len(v))) + v
    return bytes((_SEQ, len(out))) + out


def _time(buf, s, e, tag):
    t = bytes(buf[s:e]).decode()
    if tag == 0x17 and len(t) == 13:  # UTCTime YYMMDDHHMMSSZ
        y = int(t[0:2])
        y += 1900 if y >= 50 else 2000
        t = t[2:]
    elif tag == 0x18 and len(t) == 15:  # GeneralizedTime YYYYMMDDHHMMSSZ
        y = int(t[0:4])
        t = t[4:]
    else:
        raise CertError(MALFORMED, "unsupported time format")
    if t[-1:] != "Z" or not t[:-1].isdigit():
        raise CertError(MALFORMED, "time is not UTC")
    return (y, int(t[0:2]), int(t[2:4]), int(t[4:6]), int(t[6:8]), int(t[8:10]))


def time_text(t):
    return "%04d-%02d-%02d %02d:%02d:%02d UTC" % tuple(t)


def _name_parts(name):
    """[(label, value)] of a DER Name's known attributes ("CN", "O", ...), in order."""
    parts = []
    s, e = _expect(name, 0, len(name), _SEQ, "Name")
    while s < e:
        _, rs, re = tlv(name, s, e)  # RelativeDistinguishedName SET
        s = re
        while rs < re:
            _, a_s, a_e = tlv(name, rs, re)
            rs = a_e
            _, os_, oe = tlv(name, a_s, a_e)
            _, vs, ve = tlv(name, oe, a_e)
            oid = bytes(name[os_:oe])
            for known, label in _NAME_ATTRS:
                if oid == known:
                    parts.append((label, bytes(name[vs:ve]).decode()))
    return parts


def name_text(name):
    """A readable form of a DER Name, e.g. "CN=localhost, O=safebench" (unknown attributes left out)."""
    try:
        return ", ".join(label + "=" + value for label, value in _name_parts(name))
    except (CertError, ValueError):
        return "(unreadable name)"


def common_name(name):
    """The first commonName of a DER Name; CertError if it has none."""
    for label, value in _name_parts(name):
        if label == "CN":
            return value
    raise CertError(MALFORMED, "the name has no commonName")


class Certificate:
    """The parts of an X.509 v3 certificate a TLS client checks. `der` is kept by reference."""

    def __init__(self, der):
        self.der = der
        n = len(der)
        s, e = _expect(der, 0, n, _SEQ, "Certificate")
        if e != n:
            raise CertError(MALFORMED, "trailing bytes after the certificate")
        _, ts, te = tlv(der, s, e)
        self.tbs = (s, te)  # TBSCertificate including its header: what the signature covers
        a_s, a_e = _expect(der, te, e, _SEQ, "signatureAlgorithm")
        sig_alg = self._oid(a_s, a_e)
        bs, be = _expect(der, a_e, e, 0x03, "signatureValue")
        if be != e or der[bs] != 0:
            raise CertError(MALFORMED, "bad signature BIT STRING")
        if sig_alg != _OID_ECDSA_SHA256:
            raise CertError(UNSUPPORTED, "certificate not signed with ecdsa-with-SHA256")
        self.sig = ecdsa_sig_decode(memoryview(der)[bs + 1:be])
        self._parse_tbs(ts, te, sig_alg)

    def _oid(self, s, e):
        os_, oe = _expect(self.der, s, e, 0x06, "OID")
        return bytes(self.der[os_:oe])

    def _parse_tbs(self, s, e, sig_alg):
        der = self.der
        tag, vs, ve = tlv(der, s, e)
        if tag == 0xA0:  # [0] version
            s = ve
        _, _, s = tlv(der, s, e)  # serialNumber
        a_s, a_e = _expect(der, s, e, _SEQ, "signature")
        if self._oid(a_s, a_e) != sig_alg:
            raise CertError(MALFORMED, "inner and outer signature algorithms differ")
        _, ns, ne = tlv(der, a_e, e)
        self.issuer = bytes(der[a_e:ne])
        vs, ve = _expect(der, ne, e, _SEQ, "validity")
        t1, s1, e1 = tlv(der, vs, ve)
        t2, s2, e2 = tlv(der, e1, ve)
        self.not_before = _time(der, s1, e1, t1)
        self.not_after = _time(der, s2, e2, t2)
        _, ss, se = tlv(der, ve, e)
        self.subject = bytes(der[ve:se])
        self.key = self._spki(se, e)
        self.ca, self.path_len, self.key_usage, self.eku, self.dns, self.ips = False, None, None, None, [], []
        s = self._spki_end
        while s < e:
            tag, xs, xe = tlv(der, s, e)
            if tag == 0xA3:
                self._extensions(xs, xe)
            s = xe

    def _spki(self, s, e):
        der = self.der
        ks, ke = _expect(der, s, e, _SEQ, "subjectPublicKeyInfo")
        self._spki_end = ke
        a_s, a_e = _expect(der, ks, ke, _SEQ, "algorithm")
        alg = self._oid(a_s, a_e)
        _, ps, pe = tlv(der, a_s, a_e)
        _, cs, ce = tlv(der, pe, a_e)
        if alg != _OID_EC_PUBLIC_KEY or bytes(der[cs:ce]) != _OID_P256:
            return None  # not a P-256 key: fine for a name, fatal where a key is needed
        bs, be = _expect(der, a_e, ke, 0x03, "subjectPublicKey")
        if be - bs != 66 or der[bs] != 0 or der[bs + 1] != 4:
            raise CertError(UNSUPPORTED, "public key is not an uncompressed P-256 point")
        return bytes(der[bs + 1:be])

    def _extensions(self, s, e):
        der = self.der
        s, e = _expect(der, s, e, _SEQ, "extensions")
        while s < e:
            xs, xe = _expect(der, s, e, _SEQ, "extension")
            s = xe
            os_, oe = _expect(der, xs, xe, 0x06, "extension OID")
            oid = bytes(der[os_:oe])
            tag, vs, ve = tlv(der, oe, xe)
            critical = False
            if tag == 0x01:
                critical = ve > vs and der[vs] != 0
                tag, vs, ve = tlv(der, ve, xe)
            if tag != 0x04:
                raise CertError(MALFORMED, "extension value is not an OCTET STRING")
            if oid == _EXT_BASIC:
                self._basic_constraints(vs, ve)
            elif oid == _EXT_KEY_USAGE:
                bs, be = _expect(der, vs, ve, 0x03, "keyUsage")
                bits = bytes(der[bs + 1:be]) + b"\x00\x00"
                self.key_usage = (bits[0] << 8) | bits[1]  # 0x8000 digitalSignature, 0x0400 keyCertSign
            elif oid == _EXT_SAN:
                self._san(vs, ve)
            elif oid == _EXT_EKU:
                self.eku = self._oid_list(vs, ve)
            elif critical and oid not in _EXT_IGNORED:
                raise CertError(UNSUPPORTED, "unsupported critical extension")

    def _basic_constraints(self, s, e):
        der = self.der
        s, e = _expect(der, s, e, _SEQ, "basicConstraints")
        while s < e:
            tag, vs, ve = tlv(der, s, e)
            if tag == 0x01:
                self.ca = ve > vs and der[vs] != 0
            elif tag == 0x02:
                self.path_len = _uint(der, vs, ve)
            s = ve

    def _san(self, s, e):
        der = self.der
        s, e = _expect(der, s, e, _SEQ, "subjectAltName")
        while s < e:
            tag, vs, ve = tlv(der, s, e)
            if tag == 0x82:
                self.dns.append(bytes(der[vs:ve]))
            elif tag == 0x87:
                self.ips.append(bytes(der[vs:ve]))
            s = ve

    def _oid_list(self, s, e):
        der = self.der
        s, e = _expect(der, s, e, _SEQ, "extKeyUsage")
        out = []
        while s < e:
            _, vs, ve = tlv(der, s, e)
            out.append(bytes(der[vs:ve]))
            s = ve
        return out

    def tbs_digest(self):
        return hashlib.sha256(memoryview(self.der)[self.tbs[0]:self.tbs[1]]).digest()

    def point(self):
        """The subject's public key as 04||X||Y."""
        if self.key is None:
            raise CertError(UNSUPPORTED, "certificate key is not ECDSA P-256")
        return self.key

    def point_xy(self):
        p = self.point()
        return int.from_bytes(p[1:33], "big"), int.from_bytes(p[33:65], "big")


def _check_time(cert, now, what):
    if now < cert.not_before:
        raise CertError(EXPIRED, "%s is not valid before %s" % (what, time_text(cert.not_before)))
    if now > cert.not_after:
        raise CertError(EXPIRED, "%s expired on %s" % (what, time_text(cert.not_after)))


def _parse_ipv4(host):
    parts = host.split(".")
    if len(parts) != 4:
        return None
    out = bytearray()
    for p in parts:
        if not p.isdigit() or int(p) > 255:
            return None
        out.append(int(p))
    return bytes(out)


def _dns_match(pattern, host):
    pattern = pattern.lower()
    if pattern == host:
        return True
    # a wildcard stands for exactly one whole left-most label: *.example.com
    if pattern.startswith(b"*.") and b"*" not in pattern[2:] and pattern.count(b".") >= 2:
        dot = host.find(b".")
        return dot > 0 and host[dot:] == pattern[1:]
    return False


def check_host(cert, host):
    """The certificate's subjectAltName must name `host` (a DNS name or an IPv4 address)."""
    ip = _parse_ipv4(host)
    if ip is not None:
        if ip in cert.ips:
            return
    else:
        name = host.lower().rstrip(".").encode()
        for pattern in cert.dns:
            if _dns_match(pattern, name):
                return
    names = [d.decode() for d in cert.dns] + [".".join(str(b) for b in i) for i in cert.ips if len(i) == 4]
    raise CertError(BAD_HOST, "certificate is for %s, not %s" % (", ".join(names) or "no subjectAltName", host))


def _check_signature(cert, issuer, verify, what):
    x, y = issuer.point_xy()
    r, s = cert.sig
    if not verify(x, y, cert.tbs_digest(), r, s):
        raise CertError(BAD_SIGNATURE, "signature of %s does not verify" % what)


def validate_chain(chain, anchor_der, now, host, verify):
    """Check a server's certificate list (leaf first, DER) against one trust anchor; returns the leaf.

    `now` is (y, m, d, hh, mm, ss) UTC; `verify(x, y, digest, r, s)` checks one ECDSA signature.
    """
    if not chain:
        raise CertError(MALFORMED, "the server sent no certificate")
    if len(chain) > MAX_CHAIN + 1:
        raise CertError(UNKNOWN_CA, "certificate chain too long")
    anchor = Certificate(anchor_der)
    _check_time(anchor, now, "the trust anchor")
    leaf = Certificate(chain[0])
    _check_time(leaf, now, "the server certificate")
    leaf.point()
    check_host(leaf, host)
    if leaf.key_usage is not None and not leaf.key_usage & 0x8000:
        raise CertError(BAD_USAGE, "server certificate key usage lacks digitalSignature")
    if leaf.eku is not None and _OID_SERVER_AUTH not in leaf.eku and _OID_ANY_EKU not in leaf.eku:
        raise CertError(BAD_USAGE, "server certificate is not for serverAuth")
    cert, depth = leaf, 0
    while True:
        if len(cert.der) == len(anchor.der) and bytes(cert.der) == bytes(anchor.der):  # copies only when alike
            return leaf  # the server sent the anchor itself
        if cert.issuer == anchor.subject:
            _check_signature(cert, anchor, verify, "the certificate issued by the trust anchor")
            return leaf
        parent = None
        for der in chain[1:]:
            c = Certificate(der)
            if c.subject == cert.issuer and c.der is not cert.der:
                parent = c
                break
        if parent is None or depth >= MAX_CHAIN:
            raise CertError(UNKNOWN_CA, "unknown CA: %s does not lead to the trust anchor (%s)"
                            % (name_text(cert.issuer), name_text(anchor.subject)))
        if not parent.ca or (parent.key_usage is not None and not parent.key_usage & 0x0400):
            raise CertError(BAD_USAGE, "%s is not a CA" % name_text(parent.subject))
        if parent.path_len is not None and depth > parent.path_len:
            raise CertError(BAD_USAGE, "path length constraint of %s exceeded" % name_text(parent.subject))
        _check_time(parent, now, "intermediate " + name_text(parent.subject))
        _check_signature(cert, parent, verify, name_text(cert.subject))
        cert, depth = parent, depth + 1
