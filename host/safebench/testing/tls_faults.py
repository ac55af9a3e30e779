"""TLS test instruments that misbehave on purpose, for the board's negative cases.

- ScriptedServer: a deliberately small TLS 1.3 server built from `cryptography` primitives (ECDHE
  P-256, HKDF, AES-GCM/CCM, ECDSA), so it can send flights no real server sends: without
  CertificateVerify or Certificate, with a wrong Finished; or, when well behaved, NewSessionTicket and
  a KeyUpdate after the handshake. It reports what the client sent back (alert, data).
- TamperProxy: a TCP relay that flips one bit in the first protected record from the server.
- SlowProxy: a TCP relay that holds what the server sends for `delay` seconds (a slow peer, a slow network).
- SilentServer: accepts a connection and never answers (a dead server behind a live port).

All listen on 127.0.0.1 only and serve one connection from a thread.
"""

import hashlib
import hmac
import os
import socket
import struct
import threading
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM

from ..tls import REPLY_PREFIX, ServerFiles

SCRIPTS = ("normal", "skip_certificate_verify", "skip_certificate", "bad_finished", "key_update")
_EMPTY = hashlib.sha256(b"").digest()


def _hkdf_label(secret, label, context, length):
    full = b"tls13 " + label
    info = struct.pack(">HB", length, len(full)) + full + bytes([len(context)]) + context
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(secret, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


def _extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def _msg(kind, body):
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


def _vec(n, data):
    return len(data).to_bytes(n, "big") + data


class _Keys:
    """One direction's AEAD state."""

    def __init__(self, suite, secret):
        key = _hkdf_label(secret, b"key", b"", 16)
        self.iv = _hkdf_label(secret, b"iv", b"", 12)
        self.aead = AESGCM(key) if suite == 0x1301 else AESCCM(key, 16)
        self.secret, self.suite, self.seq = secret, suite, 0

    def nonce(self):
        n = (int.from_bytes(self.iv, "big") ^ self.seq).to_bytes(12, "big")
        self.seq += 1
        return n

    def updated(self):
        return _Keys(self.suite, _hkdf_label(self.secret, b"traffic upd", b"", 32))


class _Conn:
    def __init__(self, sock):
        self.sock = sock

    def read_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError
            out += chunk
        return out

    def read_record(self, keys=None):
        """(content type, plaintext); with keys, the inner type of a protected record."""
        hdr = self.read_exact(5)
        body = self.read_exact(int.from_bytes(hdr[3:5], "big"))
        if keys is None or hdr[0] != 23:
            return hdr[0], body
        plain = keys.aead.decrypt(keys.nonce(), body, hdr).rstrip(b"\x00")
        return plain[-1], plain[:-1]

    def write_record(self, ctype, data, keys=None):
        if keys is None:
            self.sock.sendall(bytes([ctype, 3, 3]) + _vec(2, data))
            return
        hdr = bytes([23, 3, 3]) + (len(data) + 17).to_bytes(2, "big")
        self.sock.sendall(hdr + keys.aead.encrypt(keys.nonce(), data + bytes([ctype]), hdr))


def _client_hello(body):
    """(suites, P-256 key share or None) of a ClientHello body."""
    i = 2 + 32
    i += 1 + body[i]
    n = int.from_bytes(body[i:i + 2], "big")
    suites = [int.from_bytes(body[i + 2 + k:i + 4 + k], "big") for k in range(0, n, 2)]
    i += 2 + n
    i += 1 + body[i]
    end = i + 2 + int.from_bytes(body[i:i + 2], "big")
    i += 2
    share = None
    while i < end:
        kind, size = struct.unpack(">HH", body[i:i + 4])
        ext = body[i + 4:i + 4 + size]
        i += 4 + size
        if kind == 51:
            j = 2
            while j < len(ext):
                group, klen = struct.unpack(">HH", ext[j:j + 4])
                if group == 0x17:
                    share = ext[j + 4:j + 4 + klen]
                j += 4 + klen
    return suites, share


class _Listener:
    """A listening socket on 127.0.0.1 and the threads serving it (`_serve` first), for a `with` block:
    on its way out the socket closes, `_stop` is set and the threads are waited for."""

    def __enter__(self):
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(60)
        self.port = self._listener.getsockname()[1]
        self._threads = [threading.Thread(target=self._serve, daemon=True)]
        self._threads[0].start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._listener.close()
        for t in self._threads:
            t.join(10)


class ScriptedServer(_Listener):
    def __init__(self, files: ServerFiles, script="normal"):
        if script not in SCRIPTS:
            raise ValueError(f"unknown script {script!r}; one of {', '.join(SCRIPTS)}")
        self.script = script
        self.cert_der = x509.load_pem_x509_certificate(files.cert.read_bytes()).public_bytes(
            serialization.Encoding.DER)
        self.key = serialization.load_pem_private_key(files.key.read_bytes(), None)
        self.report = {"server": "scripted", "script": script}

    def result(self, timeout=60.0) -> dict:
        self._threads[0].join(timeout)
        return self.report

    def _serve(self):
        try:
            sock, _ = self._listener.accept()
        except OSError as e:
            self.report["error"] = f"no connection: {e}"
            return
        with sock:
            sock.settimeout(30)
            try:
                self._session(_Conn(sock))
            except (EOFError, OSError, ValueError) as e:
                self.report.setdefault("error", f"{type(e).__name__}: {e}")
            except Exception as e:  # InvalidTag and friends: the report says what happened
                self.report.setdefault("error", f"{type(e).__name__}: {e}")

    def _session(self, conn):
        ctype, record = conn.read_record()
        ch = record
        suites, share = _client_hello(ch[4:])
        suite = 0x1301 if 0x1301 in suites else 0x1304 if 0x1304 in suites else None
        if suite is None or share is None:
            conn.write_record(21, b"\x02\x28")
            self.report["error"] = "no common suite or no P-256 key share"
            return
        key = ec.generate_private_key(ec.SECP256R1())
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), share)
        shared = key.exchange(ec.ECDH(), peer)
        point = key.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint)
        exts = struct.pack(">HHH", 43, 2, 0x0304) + struct.pack(">HHHH", 51, len(point) + 4, 0x17, len(point)) + point
        sh = _msg(2, b"\x03\x03" + os.urandom(32) + b"\x00" + struct.pack(">HB", suite, 0) + _vec(2, exts))
        conn.write_record(22, sh)
        transcript = ch + sh
        hs = _extract(_hkdf_label(_extract(bytes(32), bytes(32)), b"derived", _EMPTY, 32), shared)
        th = hashlib.sha256(transcript).digest()
        c_hs, s_hs = _hkdf_label(hs, b"c hs traffic", th, 32), _hkdf_label(hs, b"s hs traffic", th, 32)
        master = _extract(_hkdf_label(hs, b"derived", _EMPTY, 32), bytes(32))
        out, inp = _Keys(suite, s_hs), _Keys(suite, c_hs)

        flight = []
        flight.append(_msg(8, _vec(2, b"")))
        flight.append(_msg(13, b"\x00" + _vec(2, struct.pack(">HHHH", 13, 4, 2, 0x0403))))
        if self.script != "skip_certificate":
            flight.append(_msg(11, b"\x00" + _vec(3, _vec(3, self.cert_der) + b"\x00\x00")))
        if self.script not in ("skip_certificate", "skip_certificate_verify"):
            content = b" " * 64 + b"TLS 1.3, server CertificateVerify\x00" + hashlib.sha256(
                transcript + b"".join(flight)).digest()
            sig = self.key.sign(content, ec.ECDSA(hashes.SHA256()))
            flight.append(_msg(15, struct.pack(">H", 0x0403) + _vec(2, sig)))
        fin = hmac.new(_hkdf_label(s_hs, b"finished", b"", 32), hashlib.sha256(transcript + b"".join(flight)).digest(),
                       hashlib.sha256).digest()
        if self.script == "bad_finished":
            fin = bytes([fin[0] ^ 1]) + fin[1:]
        flight.append(_msg(20, fin))
        for m in flight:
            conn.write_record(22, m, out)
        transcript += b"".join(flight)
        th = hashlib.sha256(transcript).digest()
        c_ap, s_ap = _Keys(suite, _hkdf_label(master, b"c ap traffic", th, 32)), _Keys(
            suite, _hkdf_label(master, b"s ap traffic", th, 32))
        self._client_flight(conn, inp, c_ap, s_ap)

    def _client_flight(self, conn, inp, c_ap, s_ap):
        """Read the client's answer: an alert (negative scripts) or its flight, then data."""
        while True:
            ctype, data = conn.read_record(inp)
            if ctype == 21:
                self.report["client_alert"] = data[1]
                return
            if data[:1] == b"\x0b":
                self.report["client_cert"] = data[4 + 1 + 3 + 3:4 + 1 + 3 + 3 + int.from_bytes(data[8:11], "big")].hex()
            if data[:1] == b"\x14":
                break
        self.report["handshake"] = True
        if self.script == "key_update":
            conn.write_record(22, _msg(4, struct.pack(">IIB", 60, 0, 0) + _vec(2, b"ticket") + b"\x00\x00"), s_ap)
            conn.write_record(22, _msg(24, b"\x01"), s_ap)  # update_requested
            s_ap = s_ap.updated()
        line = b""
        while not line.endswith(b"\n"):
            ctype, data = conn.read_record(c_ap)
            if ctype == 21:
                self.report["client_alert"] = data[1]
                return
            line += data
        self.report["received"] = line.hex()
        if self.script == "key_update":
            ctype, data = conn.read_record(c_ap)
            self.report["client_key_update"] = ctype == 22 and data == _msg(24, b"\x00")
            c_ap = c_ap.updated()
        conn.write_record(23, REPLY_PREFIX + line, s_ap)
        ctype, data = conn.read_record(c_ap)  # close_notify, under the client's updated key if it updated
        self.report["client_close_notify"] = ctype == 21 and data == b"\x01\x00"


class _Relay(_Listener):
    """Relays one TCP connection to `upstream`; subclasses change what the server sends on its way
    (`_from_server`, called with each whole TLS record)."""

    def __init__(self, upstream_port, upstream_host="127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)

    def _serve(self):
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        server = socket.create_connection(self.upstream, timeout=30)
        up = threading.Thread(target=self._pipe, args=(client, server, False), daemon=True)
        up.start()
        self._pipe(server, client, True)
        up.join(30)
        client.close()
        server.close()

    def _pipe(self, src, dst, from_server):
        src.settimeout(30)
        buf = b""
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                if not from_server:
                    dst.sendall(chunk)
                    continue
                buf += chunk
                records = []
                while len(buf) >= 5 and len(buf) >= 5 + int.from_bytes(buf[3:5], "big"):  # whole records
                    n = 5 + int.from_bytes(buf[3:5], "big")
                    records.append(bytearray(buf[:n]))
                    buf = buf[n:]
                if records:
                    dst.sendall(self._from_server(records))
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass


class TamperProxy(_Relay):
    """Flips one bit in the first protected (type 23) record the server sends; `flipped` says whether it did."""

    flipped = False

    def _from_server(self, records):
        for record in records:
            if record[0] == 23 and not self.flipped:
                record[len(record) // 2] ^= 0x01
                self.flipped = True
        return b"".join(records)


class SlowProxy(_Relay):
    """Holds each batch of records the server sends for `delay` seconds: a peer that answers late."""

    def __init__(self, upstream_port, delay, upstream_host="127.0.0.1"):
        super().__init__(upstream_port, upstream_host)
        self.delay = delay
        self.held = 0  # batches held back

    def _from_server(self, records):
        time.sleep(self.delay)
        self.held += 1
        return b"".join(records)


class SilentServer(_Listener):
    """Accepts one connection and never answers; `received` is what the client sent (its ClientHello)."""

    def __init__(self):
        self.received = b""

    def _serve(self):
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(0.1)
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    self._stop.wait()  # the client gave up: hold the socket until the test ends
                    return
                self.received += chunk
