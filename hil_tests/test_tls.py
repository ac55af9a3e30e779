"""TLS 1.3 from the board with the SIM's keys (ECDHE and the client signature on the card) against three
server implementations, and the failures that must stop a handshake before any application data.

The servers run on the host's loopback, so these tests need the simulated board (the unix port shares
the host's network); a board on a modem reaches them once the modem TCP transport exists.
"""

import datetime
import json
import shutil
import socket
import time
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives import serialization

from safebench import tls
from safebench.errors import ConnectionRefused, HostNotFound, NetworkTimeout, RpcError
from safebench.pki import CA_CERT, CA_KEY, CertificateAuthority
from safebench.rpc_codes import E_CONNECTION_REFUSED, E_HOST_NOT_FOUND, E_NETWORK_TIMEOUT, E_TLS
from safebench.testing.tls_faults import ScriptedServer, SilentServer, SlowProxy, TamperProxy

DATA = b"hello from the SIM\n"
pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def servers(tmp_path_factory, ca_cert):
    """A throwaway CA for server certificates (the board is given it as trust anchor) and server files."""
    folder = tmp_path_factory.mktemp("tls")
    server_ca = CertificateAuthority.create("safebench TLS test CA")
    client_ca = ca_cert.public_bytes(serialization.Encoding.PEM)
    return SimpleNamespace(folder=folder, ca=server_ca, client_ca=client_ca,
                           anchor=server_ca.cert.public_bytes(serialization.Encoding.DER),
                           files=tls.make_server_files(folder / "good", server_ca, client_ca))


def _echo(device, port, servers, server_name="localhost", **options):
    return tls.board_session(device, "127.0.0.1", port, server_name, DATA, servers.anchor, **options)


def _fails(device, port, servers, words, alert, **options):
    with pytest.raises(RpcError) as e:
        _echo(device, port, servers, **options)
    err = e.value
    assert err.code == E_TLS and words in str(err) and err.data["alert"] == alert, str(err)
    return err


def _no_data(seen):
    assert "received" not in seen or seen["received"] in (False, "")


# ---- handshakes ----------------------------------------------------------------------------------

# A handshake costs an emulated Pico a minute: there each suite and each server is shown once (Python's ssl with
# AES-GCM, OpenSSL with AES-CCM); the simulated boards, with the same firmware, run all four.
EMULATED_PAIRS = {("python", "gcm"), ("openssl", "ccm")}


def _once_on_emulated(board, server, suite):
    if board.get("emulated") and (server, suite) not in EMULATED_PAIRS:
        pytest.skip(f"{suite} against this server is shown on the simulated boards; an emulated Pico shows "
                    f"{', '.join(f'{s} against {v}' for v, s in sorted(EMULATED_PAIRS))}")


@pytest.mark.parametrize("suite", ["gcm", "ccm"])
def test_python_ssl_server(simulated, board, device, ca_cert, servers, suite):
    _once_on_emulated(board, "python", suite)
    with tls.PythonServer(servers.files, suites=(suite,)) as server:
        board = _echo(device, server.port, servers, suites=[suite])
        seen = server.result()
    res = tls.check_session(device, board, seen, ca_cert, DATA)  # chain, the SIM's key, data both ways
    assert res["client_key_is_sim_key"]
    assert board["cipher"] == seen["cipher"] == tls.SUITES[suite] and board["version"] == "TLSv1.3"
    ops = board["sim_ops"]
    assert ops == {"now": 1, "ephemeral": 1, "ecdh": 1, "certificate": 1, "sign_sha256": 1}, ops
    assert board["apdus"] > 0 and board["wiped"]


def test_trust_anchor_from_the_sim(simulated, device, ca_cert):
    # the bench CA is the SIM's CA file (03): no anchor is passed, the board reads it from the card
    res = tls.echo_with_host(device, simulated.dir, suites=("gcm",))
    assert res["board"]["sim_ops"]["trust_anchor"] == 1 and res["client_key_is_sim_key"]


def test_server_signatures_checked_on_the_sim(simulated, device, ca_cert, servers):
    with tls.PythonServer(servers.files) as server:
        board = _echo(device, server.port, servers, verify="sim")
        seen = server.result()
    tls.check_session(device, board, seen, ca_cert, DATA)
    assert board["verify"] == "sim" and board["sim_ops"]["verify_sha256"] == 2


def test_hello_retry_request(simulated, device, ca_cert, servers):
    with tls.PythonServer(servers.files) as server:
        board = _echo(device, server.port, servers, hello_retry=True)
        seen = server.result()
    tls.check_session(device, board, seen, ca_cert, DATA)
    assert board["hello_retry"] is True and board["sim_ops"]["ephemeral"] == 1


@pytest.mark.parametrize("suite", ["gcm", "ccm"])
def test_openssl_s_server(simulated, board, device, servers, suite):
    _once_on_emulated(board, "openssl", suite)
    with tls.OpenSSLServer(servers.files, suites=(suite,)) as server:
        board = _echo(device, server.port, servers, suites=[suite])
        seen = server.result()
    assert seen["established"] and seen["version"] == "TLSv1.3" and seen["cipher"] == tls.SUITES[suite]
    assert seen["verification"] == "OK" and device.call("sim.info")["iccid"] in seen["client_subject"]
    assert bytes.fromhex(board["received"]) == DATA[:-1][::-1] + b"\n"  # s_server -rev reverses the line


@pytest.mark.parametrize("suite", ["gcm", "ccm"])
def test_gnutls_serv(simulated, device, board, ca_cert, servers, suite):
    if shutil.which("gnutls-serv") is None:
        pytest.skip("gnutls-serv is not installed (Debian gnutls-bin; `make test` installs it)")
    if board.get("emulated"):
        pytest.skip("gnutls-serv closes a connection 40 s after its ClientHello, and the emulated Pico's handshake "
                    "takes 40-55 s of wall time (about 4 s of its own clock, a real Pico's)")
    with tls.GnutlsServer(servers.files, suites=(suite,)) as server:
        session = _echo(device, server.port, servers, suites=[suite])
        seen = server.result()
    assert seen["version"] == "TLSv1.3" and seen["cipher"] == {"gcm": "AES-128-GCM", "ccm": "AES-128-CCM"}[suite]
    assert seen["client_trusted"]
    assert tls.client_key_is_sim_key(bytes.fromhex(seen["client_cert"]),
                                     lambda m: bytes.fromhex(device.call("sim.sign", message=m.hex())["signature"]))
    assert bytes.fromhex(session["received"]) == DATA  # gnutls-serv --echo


# ---- failures: a clear error on the board, no application data at the server ---------------------

def test_unknown_ca(simulated, device, servers):
    files = tls.make_server_files(servers.folder / "unknown", CertificateAuthority.create("some other CA"),
                                  servers.client_ca)
    with tls.PythonServer(files) as server:
        _fails(device, server.port, servers, "unknown CA", 48)
        seen = server.result()
    _no_data(seen)
    assert "UNKNOWN_CA" in seen["error"].upper()


def test_expired_server_certificate(simulated, device, servers):
    now = datetime.datetime.now(datetime.timezone.utc)
    files = tls.make_server_files(servers.folder / "expired", servers.ca, servers.client_ca,
                                  valid_from=now - datetime.timedelta(days=30),
                                  valid_until=now - datetime.timedelta(days=1))
    with tls.PythonServer(files) as server:
        _fails(device, server.port, servers, "expired certificate", 45)
        _no_data(server.result())


def test_wrong_host_name(simulated, device, servers):
    with tls.PythonServer(servers.files) as server:
        err = _fails(device, server.port, servers, "bad host name", 42, server_name="broker.example.com")
        _no_data(server.result())
    assert "not broker.example.com" in str(err)


def test_server_without_our_suites(simulated, device, servers):
    with tls.OpenSSLServer(servers.files, suites=("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")) as server:
        err = _fails(device, server.port, servers, "handshake failure", 40)
        seen = server.result()
    assert err.data["remote"] and not seen["established"]


def test_server_without_our_group(simulated, device, servers):
    with tls.OpenSSLServer(servers.files, groups=("X25519", "X448")) as server:
        err = _fails(device, server.port, servers, "handshake failure", 40)
        seen = server.result()
    assert err.data["remote"] and not seen["established"]


def test_record_tampered_in_flight(simulated, device, servers):
    with tls.PythonServer(servers.files) as server, TamperProxy(server.port) as proxy:
        _fails(device, proxy.port, servers, "bad record MAC", 20)
        seen = server.result()
    assert proxy.flipped
    _no_data(seen)


def test_server_skipping_certificate_verify(simulated, device, servers):
    with ScriptedServer(servers.files, "skip_certificate_verify") as server:
        _fails(device, server.port, servers, "skipped its CertificateVerify", 10)
        seen = server.result()
    assert seen["client_alert"] == 10 and "handshake" not in seen
    _no_data(seen)
    assert device.call("info")["firmware"]  # the board keeps serving after failed handshakes


# ---- the network: every wait has a deadline, and failures keep their meaning ---------------------

def _closed_port():
    with socket.socket() as s:  # bound, never listening: a connect there is refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_silent_server_times_out_at_the_deadline(simulated, device, servers):
    # a server that accepts and never answers: the board gives up after the request's timeout_ms, not minutes
    with SilentServer() as server:
        t0 = time.monotonic()
        with pytest.raises(NetworkTimeout) as e:
            _echo(device, server.port, servers, timeout_ms=1000, timeout=30)
        waited = time.monotonic() - t0
        assert server.received[:1] == b"\x16"  # it did get our ClientHello
    assert e.value.code == E_NETWORK_TIMEOUT and f"no data from 127.0.0.1:{server.port} within 1000 ms" in str(e.value)
    assert waited < 20, waited
    assert device.call("info")["firmware"]  # the board answers the next request


def test_refused_and_unknown_hosts_are_network_errors(simulated, device, servers):
    port = _closed_port()
    with pytest.raises(ConnectionRefused) as e:
        _echo(device, port, servers, timeout=30)
    assert e.value.code == E_CONNECTION_REFUSED and f"connection refused by 127.0.0.1:{port}" in str(e.value)
    assert e.value.data["peer"] == f"127.0.0.1:{port}"
    with pytest.raises(HostNotFound) as e:
        tls.board_session(device, "no-such-host.invalid", 443, timeout=30)
    assert e.value.code == E_HOST_NOT_FOUND and "no such host no-such-host.invalid" in str(e.value)
    assert device.call("info")["firmware"]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("dialect", ["quectel", "simcom"])
def test_slow_server_over_the_modem_socket(own_board, dialect):
    """A server that answers each flight 1.5 s late, reached through the modem's socket commands (whose
    reads wait in 200 ms polls): the session completes; refused and unknown hosts are typed there too."""
    bench, board, dev = own_board(heap="96K", dialect=dialect)
    ca = CertificateAuthority.load(bench.dir / "ca" / CA_CERT, bench.dir / "ca" / CA_KEY)
    files = tls.make_server_files(bench.dir / "tls", ca, ca.cert.public_bytes(serialization.Encoding.PEM))
    with tls.PythonServer(files, suites=("gcm",)) as server, SlowProxy(server.port, delay=1.5) as proxy:
        res = tls.board_session(dev, "127.0.0.1", proxy.port, "localhost", DATA, suites=["gcm"], timeout=120)
        seen = server.result()
    assert proxy.held >= 2 and bytes.fromhex(seen["received"]) == DATA
    assert bytes.fromhex(res["received"]) == tls.REPLY_PREFIX + DATA
    assert ("AT+QIRD" if dialect == "quectel" else "AT+CARECV") in open(board["trace"]).read()
    port = _closed_port()
    with pytest.raises(ConnectionRefused) as e:
        tls.board_session(dev, "127.0.0.1", port, timeout=60)
    assert f"connection refused by 127.0.0.1:{port}" in str(e.value)
    with pytest.raises(HostNotFound):
        tls.board_session(dev, "no-such-host.invalid", 443, timeout=60)
    assert dev.call("sim.info", objects=False)["iccid"]  # the modem's channel is in step after all that


def test_the_next_ephemeral_key_is_made_after_a_handshake_and_used_once(board, own_board):
    """Generate Key Pair, most of a handshake's card time, runs after a handshake for the next one: a second
    handshake is one Generate Key Pair shorter. No key pair does two ECDHs: in the card's trace every Compute
    DH has a Generate Key Pair of its own before it, and a key replaced by `sim.keygen` is not handed out."""
    if board.get("emulated"):
        pytest.skip("a board of its own and three handshakes take minutes of an emulated Pico: the same firmware "
                    "runs it on the simulated boards")
    bench, board, dev = own_board()
    ca = CertificateAuthority.load(bench.dir / "ca" / CA_CERT, bench.dir / "ca" / CA_KEY)
    files = tls.make_server_files(bench.dir / "tls", ca, ca.cert.public_bytes(serialization.Encoding.PEM))
    with tls.PythonServer(files, suites=("gcm",), connections=3) as server:
        def handshake():
            return tls.board_session(dev, "127.0.0.1", server.port, "localhost", DATA, suites=["gcm"])

        first, second = handshake(), handshake()
        dev.call("sim.keygen")  # the ephemeral container gets another key: the one made ahead is forgotten
        third = handshake()
    assert [r["ephemeral_made_ahead"] for r in (first, second, third)] == [False, True, False]
    # the first also reads the certificates (once per boot); the third makes its key as the first did
    assert first["apdus"] > third["apdus"] > second["apdus"], [r["apdus"] for r in (first, second, third)]
    ins = [bytes.fromhex(r["hex"])[1] for r in map(json.loads, open(board["trace"])) if r.get("dir") == "apdu>"]
    made = [i for i in ins if i in (0xB9, 0x46)]  # Generate Key Pair, Compute DH
    assert made.count(0x46) == 3 and made[-1] == 0xB9, made
    assert all(a == 0xB9 for a, b in zip(made, made[1:], strict=False) if b == 0x46), made  # each DH on a key of its own
