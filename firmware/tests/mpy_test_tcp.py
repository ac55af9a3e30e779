# The board's own TCP sockets (tcp.py) on loopback: every wait ends by its deadline with a typed error, and
# refused, reset and unresolvable connections are the network errors they are, with their codes.
import socket
import struct
import time

import tcp
from expect import raises

_SO_LINGER = 13  # Linux: SO_LINGER {on, 0 s} makes close() send a reset


def _free_port():
    # the unix port's sockets have no getsockname: try a range of ports until one is free to listen on
    for port in range(47000, 47100):
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            srv.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
            srv.listen(1)
            return srv, port
        except OSError:
            srv.close()
    raise AssertionError("no free port")


def test_silent_server_times_out_at_the_deadline():
    srv, port = _free_port()  # listening, never accepting: the connect completes, no byte ever comes
    try:
        sock = tcp.connect("127.0.0.1", port, 80)
        t0 = time.ticks_ms()
        e = raises(tcp.NetworkTimeout, lambda: sock.readinto(bytearray(5)))
        waited = time.ticks_diff(time.ticks_ms(), t0)
        assert 70 <= waited < 1000, waited
        assert e.code == -32024 and str(e) == "no data from 127.0.0.1:%d within 80 ms" % port, str(e)
        assert e.data == {"peer": "127.0.0.1:%d" % port}
        sock.setblocking(False)
        assert sock.readinto(bytearray(5)) is None  # non-blocking: nothing there, no wait
        sock.close()
    finally:
        srv.close()


def test_data_and_end_of_stream():
    srv, port = _free_port()
    try:
        sock = tcp.connect("127.0.0.1", port, 2000)
        peer, _ = srv.accept()
        assert sock.write(b"ping") == 4
        got = peer.recv(4)
        peer.send(b"pong" if got == b"ping" else b"?")
        peer.close()
        buf = bytearray(4)
        assert sock.readinto(buf) == 4 and buf == b"pong"
        assert sock.readinto(bytearray(4)) == 0  # the peer closed: end of the stream
        sock.close()
    finally:
        srv.close()


def test_refused():
    srv, port = _free_port()
    srv.close()  # nothing listens there now
    e = raises(tcp.ConnectionRefused, lambda: tcp.connect("127.0.0.1", port, 1000))
    assert e.code == -32021 and str(e) == "connection refused by 127.0.0.1:%d" % port


def test_reset_by_the_peer():
    srv, port = _free_port()
    try:
        sock = tcp.connect("127.0.0.1", port, 2000)
        peer, _ = srv.accept()
        peer.setsockopt(socket.SOL_SOCKET, _SO_LINGER, struct.pack("ii", 1, 0))
        peer.close()
        e = raises(tcp.ConnectionReset, lambda: sock.readinto(bytearray(4)))
        assert e.code == -32022 and str(e) == "connection reset by 127.0.0.1:%d" % port
        sock.close()
    finally:
        srv.close()


def test_no_such_host():
    e = raises(tcp.HostNotFound, lambda: tcp.connect("no-such-host.invalid", 443, 1000))
    assert e.code == -32023 and str(e) == "no such host no-such-host.invalid"
