"""TCP socket commands of the Quectel and SIMCom dialects, against a loopback peer (feed() level)."""

import select
import socket
import time

import pytest

from safebench_simulator.card import Card
from safebench_simulator.modem import Modem

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def loopback_only(address, timeout):
    """The modem's connector in tests: a name that is not loopback does not resolve."""
    host, port = address
    if host not in LOOPBACK and not host.startswith("127."):
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: not resolved in tests")
    return socket.create_connection(address, timeout)


@pytest.fixture
def card_path(tmp_path):
    path = tmp_path / "card.json"
    Card.new().save(path)
    return path


@pytest.fixture
def server():
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(2)
    yield srv
    srv.close()


@pytest.fixture
def closed_port():
    """A loopback port nobody listens on."""
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def modem_of(card_path, dialect):
    modem = Modem(card_path, dialect=dialect, connect=loopback_only)
    modem.feed(b"ATE0\r")
    return modem


def at(modem, line):
    return modem.feed(line.encode() + b"\r")


def pump(modem, until, timeout=3.0):
    """Let the modem take in socket events until its output contains ``until``."""
    out, deadline = b"", time.monotonic() + timeout
    while until not in out and time.monotonic() < deadline:
        select.select(modem.waiting_sockets(), [], [], 0.05)
        out += b"".join(chunk for _, chunk in modem.poll())
    assert until in out, out
    return out


def recv_exactly(peer, size):
    data = b""
    while len(data) < size:
        chunk = peer.recv(size - len(data))
        assert chunk, "peer closed early"
        data += chunk
    return data


@pytest.mark.timeout(20)
def test_quectel_socket_lifecycle(card_path, server, closed_port):
    port = server.getsockname()[1]
    modem = modem_of(card_path, "quectel")
    opening = f'AT+QIOPEN=1,0,"TCP","127.0.0.1",{port},0,0'
    assert at(modem, opening) == b'\r\nOK\r\n\r\n+QIOPEN: 0,561\r\n'  # context 1 not active yet
    assert at(modem, "AT+QIACT=1") == b"\r\nOK\r\n"
    assert at(modem, "AT+QIACT=1") == b"\r\nERROR\r\n"  # already active
    assert at(modem, "AT+QIACT?") == b'\r\n+QIACT: 1,1,1,"10.0.0.2"\r\n\r\nOK\r\n'
    assert at(modem, opening) == b"\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n"
    peer, _ = server.accept()
    assert at(modem, opening) == b"\r\nOK\r\n\r\n+QIOPEN: 0,563\r\n"  # id in use

    # fixed-length send: CR, LF and Ctrl-Z are payload, counted, never parsed
    assert at(modem, "AT+QISEND=0,6") == b"\r\n> "
    assert modem.feed(b"a\r\nb") == b""
    assert modem.feed(b"\x1a\x1bAT\r") == b"\r\nSEND OK\r\n\r\nOK\r\n"  # 2 bytes finish it; AT follows
    assert recv_exactly(peer, 6) == b"a\r\nb\x1a\x1b"
    # variable-length send up to Ctrl-Z; ESC cancels
    assert at(modem, "AT+QISEND=0") == b"\r\n> "
    assert modem.feed(b"xyz\x1a") == b"\r\nSEND OK\r\n"
    assert recv_exactly(peer, 3) == b"xyz"
    assert at(modem, "AT+QISEND=0") == b"\r\n> "
    assert modem.feed(b"never\x1b") == b"\r\nOK\r\n"
    assert at(modem, "AT+QISEND=0,0") == b"\r\n+QISEND: 9,9,0\r\n\r\nOK\r\n"
    assert at(modem, "AT+QISEND=0,1461") == b"\r\nERROR\r\n"

    # receive: one URC until the buffer has been read empty
    peer.sendall(b"OK\r\nhello")
    assert pump(modem, b"recv") == b'\r\n+QIURC: "recv",0\r\n'
    peer.sendall(b"!")
    time.sleep(0.1)
    assert b"".join(c for _, c in modem.poll()) == b""  # still unread: no second URC
    assert at(modem, "AT+QIRD=0,4") == b"\r\n+QIRD: 4\r\nOK\r\n\r\n\r\nOK\r\n"
    assert at(modem, "AT+QIRD=0,0") == b"\r\n+QIRD: 10,4,6\r\n\r\nOK\r\n"
    assert at(modem, "AT+QIRD=0") == b"\r\n+QIRD: 6\r\nhello!\r\n\r\nOK\r\n"
    assert at(modem, "AT+QIRD=0,10") == b"\r\n+QIRD: 0\r\n\r\nOK\r\n"
    peer.sendall(b"again")
    assert pump(modem, b"recv") == b'\r\n+QIURC: "recv",0\r\n'

    # the peer closes: URC; unread bytes stay readable; sending fails; the id stays until QICLOSE
    peer.close()
    assert pump(modem, b"closed") == b'\r\n+QIURC: "closed",0\r\n'
    assert at(modem, "AT+QISEND=0,1") == b"\r\nERROR\r\n"
    assert at(modem, "AT+QIRD=0,100") == b"\r\n+QIRD: 5\r\nagain\r\n\r\nOK\r\n"
    assert at(modem, "AT+QICLOSE=0") == b"\r\nOK\r\n"
    assert at(modem, "AT+QIRD=0,100") == b"\r\nERROR\r\n"

    assert at(modem, f'AT+QIOPEN=1,1,"TCP","127.0.0.1",{closed_port},0,0') == b"\r\nOK\r\n\r\n+QIOPEN: 1,566\r\n"
    assert at(modem, 'AT+QIOPEN=1,1,"TCP","example.invalid",80,0,0') == b"\r\nOK\r\n\r\n+QIOPEN: 1,565\r\n"
    for bad in (f'AT+QIOPEN=1,1,"UDP","127.0.0.1",{port},0,0', f'AT+QIOPEN=1,12,"TCP","127.0.0.1",{port}',
                f'AT+QIOPEN=1,1,"TCP","127.0.0.1",{port},0,2', 'AT+QIOPEN=1,1,"TCP","127.0.0.1",0'):
        assert at(modem, bad) == b"\r\nERROR\r\n", bad
    modem.close()


@pytest.mark.timeout(20)
def test_quectel_context_loss_closes_connections(card_path, server):
    modem = modem_of(card_path, "quectel")
    at(modem, "AT+QIACT=1")
    at(modem, f'AT+QIOPEN=1,3,"TCP","localhost",{server.getsockname()[1]},0,0')
    peer, _ = server.accept()
    assert at(modem, "AT+CFUN=4") == b'\r\nOK\r\n\r\n+QIURC: "pdpdeact",1\r\n'
    assert peer.recv(10) == b""  # the connection really went down
    assert at(modem, "AT+QIACT?") == b"\r\nOK\r\n"
    assert at(modem, "AT+QIACT=1") == b"\r\nERROR\r\n"  # not registered: no context
    assert at(modem, "AT+CFUN=1") == b"\r\nOK\r\n"
    assert at(modem, "AT+QIACT=1") == b"\r\nOK\r\n"
    assert at(modem, "AT+QIDEACT=1") == b"\r\nOK\r\n"
    peer.close()
    modem.close()


@pytest.mark.timeout(20)
def test_simcom_socket_lifecycle(card_path, server, closed_port):
    port = server.getsockname()[1]
    modem = modem_of(card_path, "simcom")
    opening = f'AT+CAOPEN=0,0,"TCP","127.0.0.1",{port}'
    assert at(modem, opening) == b"\r\n+CAOPEN: 0,21\r\n\r\nOK\r\n"  # network not active
    assert at(modem, "AT+CNACT=0,1") == b"\r\nOK\r\n\r\n+APP PDP: 0,ACTIVE\r\n"
    assert at(modem, "AT+CNACT?") == (b'\r\n+CNACT: 0,1,"10.0.0.2"\r\n+CNACT: 1,0,"0.0.0.0"\r\n'
                                      b'+CNACT: 2,0,"0.0.0.0"\r\n+CNACT: 3,0,"0.0.0.0"\r\n\r\nOK\r\n')
    assert at(modem, opening) == b"\r\n+CAOPEN: 0,0\r\n\r\nOK\r\n"
    peer, _ = server.accept()
    assert at(modem, opening) == b"\r\nERROR\r\n"  # in use
    assert at(modem, "AT+CASTATE?") == b"\r\n+CASTATE: 0,1\r\n\r\nOK\r\n"

    assert at(modem, "AT+CASEND=0,5") == b"\r\n> "
    assert modem.feed(b"12\r45") == b"\r\nOK\r\n"
    assert recv_exactly(peer, 5) == b"12\r45"
    assert modem.feed(b"\x1a") == b""  # a stray Ctrl-Z after the data (some drivers send one) is ignored
    assert at(modem, "AT+CASEND=0,0") == b"\r\nERROR\r\n"

    peer.sendall(b"pong\r\n")
    assert pump(modem, b"CADATAIND") == b"\r\n+CADATAIND: 0\r\n"
    assert at(modem, "AT+CARECV=0,4") == b"\r\n+CARECV: 4,pong\r\n\r\nOK\r\n"
    assert at(modem, "AT+CARECV=0,100") == b"\r\n+CARECV: 2,\r\n\r\n\r\nOK\r\n"
    assert at(modem, "AT+CARECV=0,100") == b"\r\n+CARECV: 0\r\n\r\nOK\r\n"
    assert at(modem, "AT+CARECV=0,0") == b"\r\nERROR\r\n"

    peer.close()
    assert pump(modem, b"CASTATE") == b"\r\n+CASTATE: 0,0\r\n"
    assert at(modem, "AT+CASTATE?") == b"\r\n+CASTATE: 0,0\r\n\r\nOK\r\n"
    assert at(modem, "AT+CASEND=0,1") == b"\r\nERROR\r\n"
    assert at(modem, "AT+CACLOSE=0") == b"\r\nOK\r\n"
    assert at(modem, "AT+CACLOSE=0") == b"\r\nERROR\r\n"

    assert at(modem, f'AT+CAOPEN=1,0,"TCP","127.0.0.1",{closed_port}') == b"\r\n+CAOPEN: 1,23\r\n\r\nOK\r\n"
    assert at(modem, 'AT+CAOPEN=1,0,"TCP","example.invalid",80') == b"\r\n+CAOPEN: 1,20\r\n\r\nOK\r\n"
    assert at(modem, "AT+CNACT=0,0") == b"\r\nOK\r\n\r\n+APP PDP: 0,DEACTIVE\r\n"
    assert at(modem, "AT+CNACT=0,0") == b"\r\nERROR\r\n"
    modem.close()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("dialect, open_lines, closed_urc", [
    ("quectel", ["AT+QIACT=1", 'AT+QIOPEN=1,2,"TCP","127.0.0.1",{port},0,0'], b'+QIURC: "closed",2'),
    ("simcom", ["AT+CNACT=0,1", 'AT+CAOPEN=2,0,"TCP","127.0.0.1",{port}'], b"+CASTATE: 2,0"),
])
def test_network_drop(card_path, server, dialect, open_lines, closed_urc):
    modem = modem_of(card_path, dialect)
    for line in open_lines:
        at(modem, line.format(port=server.getsockname()[1]))
    peer, _ = server.accept()
    assert modem.network_drop(2) == [2]
    assert b"".join(c for _, c in modem.poll()) == b"\r\n" + closed_urc + b"\r\n"
    assert peer.recv(10) == b""
    assert modem.network_drop() == []  # nothing open any more
    peer.close()
    modem.close()


@pytest.mark.timeout(20)
def test_reboot_drops_sockets_silently(card_path, server):
    modem = modem_of(card_path, "quectel")
    at(modem, "AT+QIACT=1")
    at(modem, f'AT+QIOPEN=1,0,"TCP","127.0.0.1",{server.getsockname()[1]},0,0')
    peer, _ = server.accept()
    modem.reboot()
    assert b"QIURC" not in b"".join(c for _, c in modem.poll())
    assert peer.recv(10) == b""
    assert modem.waiting_sockets() == []
    peer.close()
    modem.close()
