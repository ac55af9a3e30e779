# TLS 1.3 client (RFC 8446) whose private-key operations happen in the SIM.
#
#   conn = tls13.wrap(sock, keys, "broker.example.com")   # handshake; raises TLSError
#   conn.write(b"..."); conn.read(n); conn.readline(); conn.close()
#
# `keys` is a SimKeys-like object: ephemeral() -> 04||X||Y (ECDHE key pair made in the SIM),
# ecdh(point) -> shared X, certificate() -> our DER certificate, sign_sha256(digest) -> raw r||s,
# trust_anchor() -> DER CA certificate, now() -> (y, m, d, hh, mm, ss) UTC or None, and, when
# verify_on_sim is set, verify_sha256(point, digest, r||s) -> bool.
#
# Profile: TLS_AES_128_GCM_SHA256 and TLS_AES_128_CCM_SHA256, secp256r1, ecdsa_secp256r1_sha256.
# The server is always authenticated (chain to the trust anchor, validity against a trusted clock,
# host name against subjectAltName); the client authenticates with the SIM's certificate when asked.
# No PSK, no 0-RTT; session tickets are dropped. The stream API is what umqtt.simple and small HTTP
# clients use: read(n), readinto(buf), readline(), write(buf[, n]), setblocking(), close().
import os
import time

import hkdf
import tls_messages as msg
from aead import wipe_buffer
from tls_record import (
    BAD_CERTIFICATE,
    CERTIFICATE_EXPIRED,
    CLOSE_NOTIFY,
    CT_ALERT,
    CT_APPDATA,
    CT_CCS,
    CT_HANDSHAKE,
    DECODE_ERROR,
    DECRYPT_ERROR,
    ILLEGAL_PARAMETER,
    INTERNAL_ERROR,
    RECORD_LIMIT,
    UNEXPECTED_MESSAGE,
    UNKNOWN_CA,
    UNSUPPORTED_CERTIFICATE,
    USER_CANCELED,
    Records,
    TLSError,
)
from tls_record import buffers as record_buffers  # a name of its own: "buffers" is the option

AES_128_GCM_SHA256 = msg.AES_128_GCM_SHA256
AES_128_CCM_SHA256 = msg.AES_128_CCM_SHA256
SUITES = msg.SUITES
_EMPTY_HASH = (b"\xe3\xb0\xc4\x42\x98\xfc\x1c\x14\x9a\xfb\xf4\xc8\x99\x6f\xb9\x24"  # SHA-256 of b""
               b"\x27\xae\x41\xe4\x64\x9b\x93\x4c\xa4\x95\x99\x1b\x78\x52\xb8\x55")


def _wipe(b):
    if isinstance(b, bytearray):
        wipe_buffer(b)


def _expect(kind, want, what):
    if kind != want:
        raise TLSError(UNEXPECTED_MESSAGE, "unexpected message: %s (got handshake type %d)" % (what, kind))


class TLSClient:
    """A TLS 1.3 connection; `handshake()` (or `wrap()`) first, then use it like a socket."""

    def __init__(self, sock, keys, server_name, trust_anchor=None, now=None, suites=None,
                 verify_on_sim=False, record_limit=RECORD_LIMIT, share_in_first_hello=True, probe=None,
                 buffers=None):
        self.sock = sock
        self.keys = keys
        self.server_name = server_name
        self._anchor = trust_anchor
        self._now = now
        self._suites = tuple(suites or (AES_128_GCM_SHA256, AES_128_CCM_SHA256))
        for s in self._suites:
            if s not in SUITES:
                raise ValueError("unsupported cipher suite %04x" % s)
        self._verify_on_sim = verify_on_sim
        self._share_first = share_in_first_hello
        self._probe = probe  # called at every SIM call and handshake record (heap measurements)
        self.records = Records(sock, buffers or record_buffers(record_limit))  # buffers: tls_record.buffers()
        self._limit = self.records.send_max  # what the buffers hold is what we ask the server to keep to
        self._pending = memoryview(b"")
        self._eof = False
        self._closed = False
        self._blocking = True
        self._secrets = [None, None]  # client and server application traffic secrets (for KeyUpdate)
        self._transcript = self._framer = None  # during the handshake only
        self.suite = None
        self.info = {"version": "TLSv1.3", "group": "secp256r1", "hello_retry": False,
                     "verify": "sim" if verify_on_sim else "firmware", "sim_ops": {}}

    def _sim(self, op, *args):
        """A call into the SIM (or its stand-in), counted for the report."""
        ops = self.info["sim_ops"]
        ops[op] = ops.get(op, 0) + 1
        if self._probe:
            self._probe()
        return getattr(self.keys, op)(*args)

    # ---- handshake -----------------------------------------------------------------------------

    def handshake(self):
        t0 = time.ticks_ms()
        try:
            self._handshake()
        except TLSError as e:
            if not e.remote and e.alert is not None:
                self.records.send_alert(e.alert)
            self._teardown()
            raise
        except Exception:
            self.records.send_alert(INTERNAL_ERROR)
            self._teardown()
            raise
        self.info["handshake_ms"] = time.ticks_diff(time.ticks_ms(), t0)
        return self

    def _handshake(self):
        now = self._now if self._now is not None else self._sim("now")
        if now is None:
            raise TLSError(None, "no trusted time: the modem has no network time, so certificate validity "
                                 "cannot be checked (pass now= to override)")
        now = tuple(now)
        anchor = self._anchor if self._anchor is not None else self._sim("trust_anchor")
        self._transcript = msg.Transcript(7)
        self._framer = msg.Framer(self._record_for_handshake)
        c_hs = s_hs = master = None
        try:
            sh = self._hello()
            c_hs, s_hs, master = self._handshake_secrets(sh)
            request = self._server_flight(s_hs, anchor, now)
            th = self._transcript.snapshot()
            self._secrets = [bytearray(hkdf.derive_secret(master, b"c ap traffic", th)),
                             bytearray(hkdf.derive_secret(master, b"s ap traffic", th))]
            self._client_flight(request, c_hs)
            self.records.set_reader(*self._traffic_keys(self._secrets[1]))
            self.records.set_writer(*self._traffic_keys(self._secrets[0]))
        finally:  # handshake secrets never outlive the handshake, whatever happened
            for secret in (c_hs, s_hs, master):
                _wipe(secret)
            self._transcript = self._framer = None

    def _hello(self):
        """ClientHello, and a second one after a HelloRetryRequest; returns the parsed ServerHello."""
        random = os.urandom(32)
        share = self._sim("ephemeral") if self._share_first else None
        self._send_handshake(msg.client_hello(random, self._suites, self.server_name, share, None, self._limit),
                             legacy_version=1)
        kind, body, whole = self._framer.next()
        _expect(kind, msg.SERVER_HELLO, "expected ServerHello")
        sh = msg.server_hello(body, self._suites)
        if sh["retry"]:
            share, whole, sh = self._retry(sh, whole, random, share)
        if sh.get("group") != msg.SECP256R1:
            raise TLSError(ILLEGAL_PARAMETER, "unsupported group: the server's key share is not secp256r1")
        if share is None:
            raise TLSError(UNEXPECTED_MESSAGE, "unexpected message: ServerHello to a hello without key share")
        _check_point(sh["point"])
        self._transcript.update(whole)
        if not self._framer.at_record_end():
            raise TLSError(UNEXPECTED_MESSAGE, "unexpected message: more data in the ServerHello record")
        self.suite = sh["suite"]
        self.info["cipher"] = SUITES[self.suite]
        return sh

    def _retry(self, hrr, whole, random, share):
        """Answer a HelloRetryRequest with a second ClientHello; returns (share, message, ServerHello)."""
        self.info["hello_retry"] = True
        group = hrr.get("group")
        if group is not None and group != msg.SECP256R1:
            raise TLSError(ILLEGAL_PARAMETER, "unsupported group: the server asks for group %04x, only "
                                              "secp256r1 is supported" % group)
        if group is not None and share is not None:
            raise TLSError(ILLEGAL_PARAMETER, "illegal parameter: HelloRetryRequest for a key share we sent")
        if group is None and hrr.get("cookie") is None:
            raise TLSError(ILLEGAL_PARAMETER, "illegal parameter: HelloRetryRequest that changes nothing")
        self._transcript.restart_for_retry(6)
        self._transcript.update(whole)
        if share is None:
            share = self._sim("ephemeral")
        self._send_handshake(msg.client_hello(random, self._suites, self.server_name, share, hrr.get("cookie"),
                                              self._limit))
        kind, body, whole = self._framer.next()
        _expect(kind, msg.SERVER_HELLO, "expected ServerHello after the retry")
        sh = msg.server_hello(body, self._suites)
        if sh["retry"]:
            raise TLSError(UNEXPECTED_MESSAGE, "unexpected message: a second HelloRetryRequest")
        if sh["suite"] != hrr["suite"]:
            raise TLSError(ILLEGAL_PARAMETER, "illegal parameter: cipher suite changed after the retry")
        return share, whole, sh

    def _handshake_secrets(self, sh):
        """ECDH in the SIM, then the key schedule up to the handshake traffic keys (installed)."""
        shared = bytearray(self._sim("ecdh", sh["point"]))
        early = hkdf.extract(b"", bytes(32))
        secret = bytearray(hkdf.extract(hkdf.derive_secret(early, b"derived", _EMPTY_HASH), shared))
        _wipe(shared)
        th = self._transcript.snapshot()
        c_hs = bytearray(hkdf.derive_secret(secret, b"c hs traffic", th))
        s_hs = bytearray(hkdf.derive_secret(secret, b"s hs traffic", th))
        master = bytearray(hkdf.extract(hkdf.derive_secret(secret, b"derived", _EMPTY_HASH), bytes(32)))
        _wipe(secret)
        self.records.set_reader(*self._traffic_keys(s_hs))
        self.records.set_writer(*self._traffic_keys(c_hs))  # our alerts are protected from here on
        return c_hs, s_hs, master

    def _server_flight(self, s_hs, anchor, now):
        """EncryptedExtensions .. Finished; returns the CertificateRequest context or None."""
        t, framer = self._transcript, self._framer
        kind, body, whole = framer.next()
        _expect(kind, msg.ENCRYPTED_EXTENSIONS, "expected EncryptedExtensions")
        send_max, agreed = msg.encrypted_extensions(body, self._limit)
        self.records.send_max, self.records.limit_agreed = send_max, agreed
        self.info["record_limit"] = send_max if agreed else None
        t.update(whole)
        kind, body, whole = framer.next()
        request = None
        if kind == msg.CERTIFICATE_REQUEST:
            request = msg.certificate_request(body)
            t.update(whole)
            kind, body, whole = framer.next()
        _expect(kind, msg.CERTIFICATE, "the server skipped its Certificate")
        point = self._server_certificate(msg.certificate_list(body), anchor, now)
        t.update(whole)
        th = t.snapshot()
        kind, body, whole = framer.next()
        _expect(kind, msg.CERTIFICATE_VERIFY, "the server skipped its CertificateVerify")
        self._check_certificate_verify(msg.certificate_verify(body), th, point)
        t.update(whole)
        th = t.snapshot()
        kind, body, whole = framer.next()
        _expect(kind, msg.FINISHED, "expected the server's Finished")
        if bytes(body) != hkdf.hmac_sha256(hkdf.expand_label(s_hs, b"finished", b"", 32), th):
            raise TLSError(DECRYPT_ERROR, "decrypt error: the server's Finished does not match the handshake")
        t.update(whole)
        if not framer.at_record_end():
            raise TLSError(UNEXPECTED_MESSAGE, "unexpected message: more data in the server's Finished record")
        return request

    def _client_flight(self, request, c_hs):
        """Certificate and CertificateVerify (signed in the SIM) when asked, then Finished."""
        import x509

        t = self._transcript
        if request is not None:
            self._send_handshake(msg.client_certificate(request, self._sim("certificate")))
            raw = self._sim("sign_sha256", msg.signed_content(False, t.snapshot()))
            self._send_handshake(msg.client_certificate_verify(x509.ecdsa_sig_encode(raw)))
        verify_data = hkdf.hmac_sha256(hkdf.expand_label(c_hs, b"finished", b"", 32), t.snapshot())
        self.records.write(CT_HANDSHAKE, msg.message(msg.FINISHED, verify_data))

    def _send_handshake(self, data, legacy_version=3):
        self._transcript.update(data)
        self.records.write(CT_HANDSHAKE, data, legacy_version)

    def _traffic_keys(self, secret):
        from aead import AesCcm, AesGcm

        key = hkdf.expand_label(secret, b"key", b"", 16)
        iv = bytearray(hkdf.expand_label(secret, b"iv", b"", 12))
        return (AesGcm(key) if self.suite == AES_128_GCM_SHA256 else AesCcm(key, 16)), iv

    def _server_certificate(self, chain, anchor, now):
        """Validate the chain; returns the leaf's public key (x, y)."""
        import x509

        try:
            leaf = x509.validate_chain(chain, anchor, now, self.server_name, self._verifier())
        except x509.CertError as e:
            raise _cert_alert(e, x509) from None
        self.info["server_subject"] = x509.name_text(leaf.subject)
        self.info["server_issuer"] = x509.name_text(leaf.issuer)
        self.info["server_not_after"] = x509.time_text(leaf.not_after)
        return leaf.point_xy()

    def _check_certificate_verify(self, sig_der, th, point):
        import x509

        try:
            r, s = x509.ecdsa_sig_decode(sig_der)
        except x509.CertError:
            raise TLSError(DECODE_ERROR, "decode error: CertificateVerify signature") from None
        if not self._verifier()(point[0], point[1], msg.signed_content(True, th), r, s):
            raise TLSError(DECRYPT_ERROR, "decrypt error: the server's CertificateVerify signature is wrong")

    def _verifier(self):
        """verify(x, y, digest, r, s) -> bool: in firmware (p256.py) or in the SIM."""
        if not self._verify_on_sim:
            import p256

            return p256.verify

        def on_sim(x, y, digest, r, s):
            if r >> 256 or s >> 256:
                return False
            point = b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")
            return bool(self._sim("verify_sha256", point, digest, r.to_bytes(32, "big") + s.to_bytes(32, "big")))

        return on_sim

    def _record_for_handshake(self):
        """The next handshake record's plaintext; alerts raise, stray records are errors."""
        while True:
            ctype, data = self.records.read()
            if self._probe:
                self._probe()
            if ctype == CT_HANDSHAKE:
                if not len(data):
                    raise TLSError(UNEXPECTED_MESSAGE, "unexpected message: empty handshake record")
                return data
            if ctype == CT_ALERT:
                self._alert(data)
                raise TLSError(UNEXPECTED_MESSAGE, "unexpected message: close_notify during the handshake")
            if ctype == CT_CCS and bytes(data) == b"\x01":
                continue  # middlebox-compatibility ChangeCipherSpec: dropped during the handshake
            raise TLSError(UNEXPECTED_MESSAGE, "unexpected message: record type %d during the handshake" % ctype)

    def _alert(self, data):
        if len(data) != 2:
            raise TLSError(DECODE_ERROR, "decode error: alert of %d bytes" % len(data))
        if data[1] == CLOSE_NOTIFY:
            self._eof = True
        elif data[1] != USER_CANCELED:
            raise TLSError(data[1], remote=True)

    # ---- application data ----------------------------------------------------------------------

    def _next_record(self, first=None):
        ctype, data = self.records.read(first)
        if ctype == CT_APPDATA:
            self._pending = data
        elif ctype == CT_ALERT:
            self._alert(data)
        elif ctype == CT_HANDSHAKE:
            self._post_handshake(data)
        else:
            raise TLSError(UNEXPECTED_MESSAGE, "unexpected message: record type %d" % ctype)

    def _post_handshake(self, data):
        r = msg.Reader(data, "post-handshake message")
        while r.left():
            kind = r.u8()
            body = r.vec(3)
            if kind == msg.NEW_SESSION_TICKET:
                continue  # no resumption: tickets are dropped
            if kind != msg.KEY_UPDATE or len(body) != 1 or body[0] > 1:
                raise TLSError(UNEXPECTED_MESSAGE, "unexpected message: post-handshake message type %d" % kind)
            self._secrets[1] = self._next_secret(1)
            self.records.set_reader(*self._traffic_keys(self._secrets[1]))
            if body[0] == 1:  # update_requested: answer under the old key, then switch
                self.records.write(CT_HANDSHAKE, msg.message(msg.KEY_UPDATE, b"\x00"))
                self._secrets[0] = self._next_secret(0)
                self.records.set_writer(*self._traffic_keys(self._secrets[0]))

    def _next_secret(self, which):
        old = self._secrets[which]
        new = bytearray(hkdf.expand_label(old, b"traffic upd", b"", 32))
        _wipe(old)
        return new

    def _fill_pending(self):
        """True when plaintext is pending, False at the end, None when non-blocking and nothing came."""
        while not len(self._pending):
            if self._eof or self._closed:
                return False
            first = None
            if not self._blocking:
                one = bytearray(1)
                self.sock.setblocking(False)
                try:
                    got = self.sock.readinto(one)
                finally:
                    self.sock.setblocking(True)
                if got is None:
                    return None
                if got:
                    first = one[0]
            try:
                self._next_record(first)
            except TLSError as e:
                if not e.remote and e.alert is not None:
                    self.records.send_alert(e.alert)
                self._teardown()
                raise
        return True

    def readinto(self, buf, nbytes=None):
        """Fill buf (or its first nbytes) unless the stream ends first; returns the count."""
        want = len(buf) if nbytes is None else min(nbytes, len(buf))
        mv = memoryview(buf)
        got = 0
        while got < want:
            state = self._fill_pending()
            if state is None and got == 0:
                return None
            if not state:
                break
            k = min(want - got, len(self._pending))
            mv[got:got + k] = self._pending[:k]
            self._pending = self._pending[k:]
            got += k
        return got

    def read(self, n=-1):
        """n bytes (fewer only at the end of the stream); n < 0 reads to the end."""
        if n is not None and n >= 0:
            buf = bytearray(n)
            k = self.readinto(buf)
            return None if k is None else bytes(buf[:k])
        out = bytearray()
        while self._fill_pending():
            out += self._pending
            self._pending = memoryview(b"")
        return bytes(out)

    def readline(self, limit=-1):
        """Up to and including b"\\n" (or `limit` bytes, or the end of the stream)."""
        out = bytearray()
        while (limit < 0 or len(out) < limit) and self._fill_pending():
            p = self._pending
            n = len(p) if limit < 0 else min(len(p), limit - len(out))
            for i in range(n):
                if p[i] == 10:
                    n = i + 1
                    break
            out += p[:n]
            self._pending = p[n:]
            if out[-1:] == b"\n":
                break
        return bytes(out)

    def write(self, buf, n=None):
        if self._closed or self.records.writer is None:
            raise TLSError(None, "write on a closed TLS connection")
        mv = memoryview(buf)
        if n is not None:
            mv = mv[:n]
        self.records.write(CT_APPDATA, mv)
        return len(mv)

    def setblocking(self, flag):
        self._blocking = bool(flag)

    def close(self):
        if self._closed:
            return
        if self.records.writer is not None:
            self.records.send_alert(CLOSE_NOTIFY, fatal=False)
        self._teardown()

    def _teardown(self):
        """Overwrite every key and secret we hold, and close the transport."""
        self._closed = True
        self.records.wipe()
        for s in self._secrets:
            _wipe(s)
        self._secrets = [None, None]
        self._pending = memoryview(b"")
        try:
            self.sock.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _check_point(point):
    import p256

    try:
        p256.decode_point(point)
    except ValueError:
        raise TLSError(ILLEGAL_PARAMETER, "illegal parameter: the server's key share is not a P-256 point") from None


def _cert_alert(e, x509):
    """The TLS alert for a certificate failure; the message keeps the reason in words."""
    words = {
        x509.UNKNOWN_CA: (UNKNOWN_CA, "unknown CA"),
        x509.EXPIRED: (CERTIFICATE_EXPIRED, "expired certificate"),
        x509.BAD_HOST: (BAD_CERTIFICATE, "bad host name"),
        x509.BAD_SIGNATURE: (BAD_CERTIFICATE, "bad certificate signature"),
        x509.UNSUPPORTED: (UNSUPPORTED_CERTIFICATE, "unsupported certificate"),
        x509.BAD_USAGE: (UNSUPPORTED_CERTIFICATE, "certificate not allowed for this use"),
    }
    alert, what = words.get(e.reason, (BAD_CERTIFICATE, "bad certificate"))
    text = str(e)
    return TLSError(alert, text if text.startswith(what) else what + ": " + text)


def wrap(sock, keys, server_name, **options):
    """Run the TLS 1.3 handshake over `sock` and return the connection; raises TLSError.

    options: trust_anchor (DER; default the SIM's CA file), now ((y, m, d, hh, mm, ss) UTC; default
    the modem's clock), suites, verify_on_sim, record_limit, share_in_first_hello, probe, buffers (the two
    record buffers, from tls_record.buffers(), instead of new ones of record_limit).
    """
    return TLSClient(sock, keys, server_name, **options).handshake()
