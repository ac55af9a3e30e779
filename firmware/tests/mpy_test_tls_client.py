# The TLS client against crafted server answers: every bad ServerHello, alert or record fails the
# handshake with a typed error in words, the right alert on the wire, and the transport closed.
import p256
import tcp
import tls13
import tls_rpc
import tvectors
from fakesock import FakeSock
from softkeys import SoftKeys
from tls_record import TLSError

F = tvectors.load("x509_fixtures.txt")[0]
NOW = (2025, 6, 1, 12, 0, 0)
G = p256.encode_point(p256.GX, p256.GY)


def _u16(n):
    return bytes((n >> 8, n & 0xFF))


def _ext(kind, body):
    return _u16(kind) + _u16(len(body)) + body


def _record(ctype, body):
    return bytes((ctype, 3, 3)) + _u16(len(body)) + body


def _server_hello(suite=0x1301, version=b"\x03\x04", group=0x17, point=G, random=bytes(range(32)), extra=b""):
    exts = (_ext(43, version) if version else b"") + extra
    if group is not None:
        exts += _ext(51, _u16(group) + (_u16(len(point)) + point if point is not None else b""))
    body = b"\x03\x03" + random + b"\x00" + _u16(suite) + b"\x00" + _u16(len(exts)) + exts
    return _record(22, b"\x02\x00" + _u16(len(body)) + body)


HRR = (b"\xcf\x21\xad\x74\xe5\x9a\x61\x11\xbe\x1d\x8c\x02\x1e\x65\xb8\x91"  # the HelloRetryRequest random
       b"\xc2\xa2\x11\x16\x7a\xbb\x8c\x5e\x07\x9e\x09\xe2\xc8\xa8\x33\x9c")


def _handshake(server_bytes, now=NOW, **options):
    sock = FakeSock(server_bytes)
    keys = SoftKeys(F["server"], 1, F["root"], now)  # the key does not matter before the server's flight
    try:
        tls13.wrap(sock, keys, "localhost", **options)
    except TLSError as e:
        assert sock.closed
        return e, sock
    raise AssertionError("handshake succeeded")


def _sent_alert(sock, alert):
    return bytes(sock.sent[-7:]) == bytes((21, 3, 3, 0, 2, 2, alert))


def test_tls12_server_is_protocol_version():
    e, sock = _handshake(_server_hello(version=None))
    assert e.alert == 70 and str(e).startswith("protocol version") and _sent_alert(sock, 70)


def test_suite_not_offered():
    e, sock = _handshake(_server_hello(suite=0x1302))
    assert e.alert == 47 and str(e).startswith("unsupported cipher suite") and _sent_alert(sock, 47)
    e, _ = _handshake(_server_hello(suite=0x1304), suites=[0x1301])
    assert str(e).startswith("unsupported cipher suite")


def test_group_not_offered():
    e, sock = _handshake(_server_hello(group=0x1D, point=bytes(32)))
    assert e.alert == 47 and str(e).startswith("unsupported group") and _sent_alert(sock, 47)
    e, _ = _handshake(_server_hello(group=0x1D, point=None, random=HRR))  # HelloRetryRequest for x25519
    assert str(e).startswith("unsupported group")
    e, _ = _handshake(_server_hello(group=0x17, point=None, random=HRR))  # retry for the share we sent
    assert e.alert == 47


def test_bad_key_share_point():
    bad = G[:-1] + bytes((G[-1] ^ 1,))
    e, sock = _handshake(_server_hello(point=bad))
    assert e.alert == 47 and "not a P-256 point" in str(e)


def test_unexpected_extension():
    e, sock = _handshake(_server_hello(extra=_ext(0x1234, b"")))
    assert e.alert == 110 and _sent_alert(sock, 110)


def test_server_alert_is_reported_not_answered():
    e, sock = _handshake(_record(21, b"\x02\x28"))
    assert e.remote and e.alert == 40 and str(e) == "server sent alert: handshake failure"
    assert sock.sent[0] == 22 and sock.sent.count(b"\x15\x03\x03") == 0  # only our ClientHello went out


def test_application_data_before_handshake():
    e, sock = _handshake(_record(23, b"hello"))
    assert e.alert == 10 and _sent_alert(sock, 10)


def test_connection_closed():
    e, _ = _handshake(b"")
    assert e.alert is None and "closed" in str(e)


def test_no_clock_sends_nothing():
    e, sock = _handshake(_server_hello(), now=None)
    assert str(e).startswith("no trusted time") and len(sock.sent) == 0


def test_tampered_encrypted_flight():
    # a valid ServerHello, then an encrypted record that cannot be authentic: bad_record_mac, sent protected
    e, sock = _handshake(_server_hello() + _record(23, bytes(64)))
    assert e.alert == 20 and str(e).startswith("bad record MAC")
    assert len(sock.sent) > 24 and sock.sent[-24] == 23  # our alert: a protected record of 5 + 2 + 1 + 16 bytes


class _Modem:
    """A modem driver with TCP sockets that hands out `sock` and remembers the timeout it was given."""

    def __init__(self, sock):
        self.sock, self.timeout_ms = sock, None

    def send(self):
        pass  # a driver with socket commands: tls.echo's "auto" transport takes the modem

    def open_tcp(self, host, port, timeout_ms):
        self.timeout_ms = timeout_ms
        return self.sock


def test_echo_keeps_transport_errors_typed_and_closes():
    # a transport failure is the transport's own typed error (not a TLS one, not an internal error), the
    # request's timeout is the transport's, and the connection is closed on every way out
    peer = "127.0.0.1:4433"
    for failure in (tcp.NetworkTimeout("no data from %s within 1500 ms" % peer, peer),
                    tcp.ConnectionReset("connection reset by " + peer, peer), MemoryError()):
        modem = _Modem(FakeSock(then=failure))
        try:
            tls_rpc.echo(lambda: SoftKeys(F["server"], 1, F["root"], NOW), modem, None, host="127.0.0.1", port=4433,
                         timeout_ms=1500)
        except Exception as e:
            assert e is failure, repr(e)
        else:
            raise AssertionError("no error")
        assert modem.sock.closed and modem.timeout_ms == 1500
        assert modem.sock.sent[0] == 22  # the ClientHello went out before the failure
