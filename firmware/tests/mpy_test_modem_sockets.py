# TCP through the modem's socket commands (modem_sockets, quectel, simcom): a slow peer is waited for up
# to the socket's own timeout, that timeout bounds reads and sends, and failed connects are typed errors.
import tcp
from atchannel import ATChannel, ATError, ATTimeout
from expect import raises
from fakeuart import FakeUART
from modem_sockets import SocketModem
from quectel import Quectel
from simcom import SimCom


class _At:
    """An AT channel whose modem never announces data: each wait for a URC times out at once."""

    def __init__(self):
        self.waits = 0

    def wait_urc(self, prefix, timeout_ms):
        self.waits += 1
        raise ATTimeout("no %s within %d ms" % (prefix.decode(), timeout_ms))


class _Driver(SocketModem):
    """Socket commands answered from a script: `quiet` empty reads, then `data`."""

    DATA_URC = b"+DATA: "
    CLOSED_URC = b"+CLOSED: "

    def __init__(self, quiet, data=b"late"):
        super().__init__(_At())
        self.quiet, self.data, self.sends, self.closes = quiet, data, [], 0
        self.refuse = None  # what a send raises

    def recv(self, conn_id, dest):
        if self.quiet:
            self.quiet -= 1
            return 0
        dest[:len(self.data)] = self.data
        return len(self.data)

    def send(self, conn_id, data, timeout_ms):
        if self.refuse:
            raise self.refuse
        self.sends.append((bytes(data), timeout_ms))

    def close(self, conn_id):
        self.closes += 1
        raise ATError("ERROR from modem for AT+QICLOSE=0")


def test_a_slow_peer_is_waited_for():
    driver = _Driver(quiet=5)  # five polls (a second at 200 ms each) before the peer's answer
    sock = driver.stream(0, "10.0.0.1", 443, 30000)
    assert sock.read(8) == b"late"
    assert driver.at.waits == 5  # each poll's wait ended without a URC; that is no error


def test_the_sockets_timeout_bounds_a_read():
    driver = _Driver(quiet=10 ** 9)
    sock = driver.stream(0, "10.0.0.1", 443, 0)
    try:
        sock.read(8)
    except tcp.NetworkTimeout as e:
        assert e.code == -32024 and str(e) == "no data from 10.0.0.1:443 within 0 ms" and driver.at.waits <= 1
    else:
        raise AssertionError("no timeout")
    sock.setblocking(False)
    assert sock.read(8) is None  # non-blocking: nothing there


def test_the_sockets_timeout_bounds_a_send():
    driver = _Driver(quiet=0)
    sock = driver.stream(0, "10.0.0.1", 443, 4500)
    assert sock.write(bytes(1460 + 10)) == 1470
    assert [(len(d), ms) for d, ms in driver.sends] == [(1460, 4500), (10, 4500)]


def test_a_send_the_modem_refuses_is_a_network_error():
    # the modem answers ERROR to a send on a connection the peer closed (its URC came first) or the network
    # lost; a modem that does not answer at all stays a modem timeout
    driver = _Driver(quiet=0)
    sock = driver.stream(0, "10.0.0.1", 443, 1000)
    driver.refuse = ATError("ERROR from modem for AT+CASEND=0,5")
    e = raises(tcp.NetworkError, sock.write, b"hello")
    assert type(e) is tcp.NetworkError and str(e) == "cannot send to 10.0.0.1:443 (ERROR from modem for AT+CASEND=0,5)"
    driver.on_urc(b"+CLOSED: 0")
    e = raises(tcp.NetworkError, sock.write, b"hello")
    assert type(e) is tcp.ConnectionReset and e.code == -32022 and "connection closed by 10.0.0.1:443" in str(e)
    driver.refuse = ATTimeout("no answer to AT+CASEND=0,5 within 1000 ms")
    assert type(raises(ATError, sock.write, b"hello")) is ATTimeout


def test_close_of_a_gone_connection_is_quiet():
    driver = _Driver(quiet=0)
    sock = driver.stream(0, "10.0.0.1", 443, 1000)
    sock.close()
    sock.close()
    assert driver.closes == 1


class _Quectel(Quectel):
    def attach(self):
        pass  # the PDP context is up


class _SimCom(SimCom):
    def attach(self):
        pass


def _open(cls, *replies):
    uart = FakeUART(replies)
    driver = cls(ATChannel(uart))
    driver.at.urc = driver.on_urc
    try:
        driver.open_tcp("broker.example", 8883, 50)
    except tcp.NetworkError as e:
        return e, uart.commands()
    raise AssertionError("connected")


def test_quectel_open_errors():
    for err, cls, words in ((b"565", tcp.HostNotFound, "no such host broker.example (+QIOPEN error 565)"),
                            (b"566", tcp.ConnectionRefused, "connection refused by broker.example:8883 (+QIOPEN error 566)"),
                            (b"561", tcp.NetworkError, "cannot connect to broker.example:8883 (+QIOPEN error 561)")):
        e, commands = _open(_Quectel, b"\r\nOK\r\n\r\n+QIOPEN: 0," + err + b"\r\n", b"\r\nOK\r\n")
        assert type(e) is cls and str(e) == words, str(e)
        assert commands[-1] == b"AT+QICLOSE=0"  # the id of a failed connect is given back
    e, commands = _open(_Quectel, b"\r\nOK\r\n", b"\r\nOK\r\n")  # no +QIOPEN at all
    assert type(e) is tcp.NetworkTimeout and str(e) == "no connection to broker.example:8883 in time (no +QIOPEN within 50 ms)"
    assert commands[-1] == b"AT+QICLOSE=0"


def test_simcom_open_errors():
    for result, cls in ((b"20", tcp.HostNotFound), (b"23", tcp.ConnectionRefused), (b"21", tcp.NetworkError)):
        e, _ = _open(_SimCom, b"\r\n+CAOPEN: 0," + result + b"\r\n\r\nOK\r\n")
        assert type(e) is cls and str(e).endswith("(+CAOPEN result %s)" % result.decode()), str(e)
    e, _ = _open(_SimCom)
    assert type(e) is tcp.NetworkTimeout


def test_an_id_a_board_reset_left_open_is_closed_and_connected_again():
    # the modem kept the connection of a board that reset: it refuses the id (SIMCom ERROR, Quectel 563)
    for cls, replies, reopen in (
            (_SimCom, (b"\r\nERROR\r\n", b"\r\nOK\r\n", b"\r\n+CAOPEN: 0,0\r\n\r\nOK\r\n"), b"AT+CAOPEN=0,0,"),
            (_Quectel, (b"\r\nOK\r\n\r\n+QIOPEN: 0,563\r\n", b"\r\nOK\r\n", b"\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n"),
             b"AT+QIOPEN=1,0,")):
        uart = FakeUART(replies)
        driver = cls(ATChannel(uart))
        driver.at.urc = driver.on_urc
        sock = driver.open_tcp("broker.example", 8883, 50)
        commands = uart.commands()
        assert sock.id == 0 and len(commands) == 3 and commands[2].startswith(reopen), commands
        assert commands[1] in (b"AT+CACLOSE=0", b"AT+QICLOSE=0")


def test_the_modem_reports_in_its_own_words():
    cases = (("dns", tcp.HostNotFound, "no such host h (+QIOPEN error 565)"),
             ("refused", tcp.ConnectionRefused, "connection refused by h:1 (+QIOPEN error 565)"),
             ("timeout", tcp.NetworkTimeout, "no connection to h:1 in time (+QIOPEN error 565)"),
             (None, tcp.NetworkError, "cannot connect to h:1 (+QIOPEN error 565)"))
    for kind, cls, words in cases:
        e = SocketModem.open_failed(kind, "h", 1, "+QIOPEN error 565")
        assert type(e) is cls and str(e) == words and e.data == {"peer": "h:1"}, str(e)
