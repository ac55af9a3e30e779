"""The firmware on a board whose modem speaks Quectel's or SIMCom's dialect: identity, signing, bring-up, TCP
sockets."""

import contextlib
import socket
import threading

import pytest

from safebench.errors import RpcError
from safebench.rpc_codes import E_MODEM


@pytest.fixture
def echo_server():
    """A loopback TCP server that echoes one connection's bytes back."""
    srv = socket.create_server(("127.0.0.1", 0))

    def serve():
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield srv.getsockname()[1]
    with contextlib.suppress(OSError):
        srv.shutdown(socket.SHUT_RDWR)  # wakes an accept() that no board came to (a skipped test)
    srv.close()
    thread.join(5)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("dialect", ["quectel", "simcom"])
def test_dialect(own_board, echo_server, dialect):
    _, _, dev = own_board(dialect=dialect)
    assert dev.call("sim.info", objects=False)["iccid"].startswith("89")
    assert dev.call("sim.sign", message="01")["signature"]
    payload = bytes(range(256)) * 6  # 1.5 KB: more than one send command (1460 bytes) carries
    got = dev.call("modem.tcp_echo", host="127.0.0.1", port=echo_server, data=payload.hex())
    assert bytes.fromhex(got["data"]) == payload


@pytest.mark.timeout(240)
@pytest.mark.parametrize("dialect", ["quectel", "simcom"])
def test_tls_over_the_modem_socket(own_board, dialect):
    """TLS 1.3 with the SIM's keys, carried by the modem's own TCP socket commands, in a 96 KB heap."""
    from safebench import tls

    bench, board, dev = own_board(heap="96K", dialect=dialect)
    res = tls.echo_with_host(dev, bench.dir, suites=("gcm",))
    assert res["server"]["version"] == "TLSv1.3" and res["client_key_is_sim_key"]
    trace = open(board["trace"]).read()
    assert ("AT+QISEND" if dialect == "quectel" else "AT+CASEND") in trace  # it went through the modem


@pytest.mark.timeout(120)
@pytest.mark.parametrize("dialect", ["quectel", "simcom"])
def test_sockets_bring_the_network_up_first(own_board, echo_server, dialect, board_files):
    from safebench_simulator.faults import FaultControl

    _, board, dev = own_board(dialect=dialect)
    board_files(board["port"]).write("network.json", '{"apn": "iot.example"}')  # this SIM's APN
    dev.reboot()
    with FaultControl(board["modem_control"]) as fault:
        fault.register(stat=2)  # searching
        status = dev.call("modem.status")
        assert status["stages"] == {"at": "ok", "sim": "ok", "registration": "searching", "pdp": "inactive"}
        assert status["apn"] == "iot.example" and status["warnings"] == []
        fault.register(stat=2, ms=1500)  # registered in 1.5 s
        got = dev.call("modem.tcp_echo", host="127.0.0.1", port=echo_server, data="0102")  # waits for the network
        assert got["data"] == "0102"
        status = dev.call("modem.status")
        assert status["stages"] == {"at": "ok", "sim": "ok", "registration": "ok", "pdp": "ok"}
        assert status["registration"] == {"stat": 1, "state": "registered, home network", "via": "CEREG"}
        pdp = fault.status()["pdp"]
        assert (pdp["contexts"]["1"] if dialect == "quectel" else pdp["app_contexts"]["0"])["apn"] == "iot.example"

        fault.reboot()  # a new attach, on a network that now says no
        dev.call("modem.status")  # the board hears the reboot's URCs (on a loaded machine they may come late)
        fault.register(stat=3)
        with pytest.raises(RpcError) as e:
            dev.call("modem.status", attach=True, timeout_ms=1200)
        assert e.value.code == E_MODEM and e.value.data["stage"] == "registration"
        assert "registration denied" in str(e.value)
