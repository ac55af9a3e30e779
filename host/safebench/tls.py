"""TLS 1.3 servers on the host for the board's TLS client, and the `safebench tls` orchestration.

Three independent server implementations, all on 127.0.0.1 and all requiring a client certificate
from the device CA: Python's `ssl` (OpenSSL, run in a child process so OPENSSL_CONF can choose the
TLS 1.3 suites and groups, which Python 3.11's ssl cannot), `openssl s_server` and `gnutls-serv`.
Each reports what it negotiated and which client certificate it saw, so a test fails unless the
server really authenticated the SIM-backed certificate.

`python -m safebench.tls serve ...` is the child-process server: one JSON line when listening, then
one per connection.
"""

import argparse
import contextlib
import json
import os
import selectors
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .errors import TlsServerError, VerificationError

SUITES = {"gcm": "TLS_AES_128_GCM_SHA256", "ccm": "TLS_AES_128_CCM_SHA256"}
GNUTLS_SUITES = {"gcm": "+AES-128-GCM", "ccm": "+AES-128-CCM"}
REPLY_PREFIX = b"host heard: "


@dataclass
class ServerFiles:
    cert: Path  # PEM, the server certificate
    key: Path  # PEM, its private key (a host key: only the device's key lives in a SIM)
    ca: Path  # PEM, the CA client certificates must chain to


def make_server_files(folder, issuer, client_ca_pem: bytes, names=("localhost",), ips=("127.0.0.1",),
                      valid_from=None, valid_until=None) -> ServerFiles:
    """A fresh server key and a certificate from `issuer` (a pki.CertificateAuthority) in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issuer.issue_server(key.public_key(), names=names, ips=ips, valid_from=valid_from,
                               valid_until=valid_until)
    files = ServerFiles(folder / "server.pem", folder / "server.key", folder / "client-ca.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    files.ca.write_bytes(client_ca_pem)
    return files


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read_line(proc, timeout, what):
    """One line of the child's stdout within `timeout` s. Reads the pipe unbuffered (os.read after
    select), so lines that arrive together are not hidden in a file object's buffer."""
    pending = getattr(proc, "_pending", b"")
    deadline = time.monotonic() + timeout
    while b"\n" not in pending:
        left = deadline - time.monotonic()
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            ready = left > 0 and sel.select(left)
        if not ready:
            raise TlsServerError(f"no {what} within {timeout:.0f} s")
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            raise TlsServerError(f"the server exited before {what} (exit status {proc.poll()})")
        pending += chunk
    line, _, proc._pending = pending.partition(b"\n")
    return line.decode(errors="replace") + "\n"


class ServerProcess:
    """A server subprocess, stopped on exit from the `with` block whatever happened (`start()` starts it)."""

    proc = None

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()  # a server that never got ready must not outlive the test
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (getattr(self.proc, "stdout", None), getattr(self.proc, "stderr", None)):
            if stream is not None:
                stream.close()


class PythonServer(ServerProcess):
    """Python `ssl` (OpenSSL) echo server: TLS 1.3 only, client certificate required.

    `suites` are keys of SUITES, `groups` OpenSSL group names. Each connection reads one line and
    answers REPLY_PREFIX + that line, then sends close_notify.
    """

    def __init__(self, files: ServerFiles, suites=("gcm", "ccm"), groups=("P-256",), connections=1, timeout=180.0):
        self.files, self.suites, self.groups, self.connections = files, suites, groups, connections
        self.timeout = timeout  # s the server waits for each read: an emulated Pico's handshake takes a minute
        self.port = None
        self._conf = None

    def start(self):
        conf = tempfile.NamedTemporaryFile("w", suffix=".cnf", delete=False)
        conf.write("openssl_conf = safebench_conf\n[safebench_conf]\nssl_conf = ssl_sect\n[ssl_sect]\n"
                   "system_default = tls13\n[tls13]\nMinProtocol = TLSv1.3\n"
                   f"Ciphersuites = {':'.join(SUITES[s] for s in self.suites)}\n"
                   f"Groups = {':'.join(self.groups)}\n")
        conf.close()
        self._conf = conf.name
        env = dict(os.environ, OPENSSL_CONF=self._conf)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "safebench.tls", "serve", "--cert", str(self.files.cert), "--key",
             str(self.files.key), "--ca", str(self.files.ca), "--connections", str(self.connections),
             "--timeout", str(self.timeout)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        self.port = self._report(20, "listening line from the Python TLS server")["listening"]
        return self

    def _report(self, timeout, what):
        deadline = time.monotonic() + timeout
        while True:  # JSON lines are reports; anything else (a traceback) is skipped here
            line = _read_line(self.proc, max(0.1, deadline - time.monotonic()), what)
            if line.startswith("{"):
                return json.loads(line)

    def result(self, timeout=60.0) -> dict:
        """What the server saw of the next connection: version, cipher, client certificate, data; or error."""
        return self._report(timeout, "connection report from the Python TLS server")

    def stop(self):
        super().stop()
        if self._conf:
            with contextlib.suppress(OSError):
                os.unlink(self._conf)


class OpenSSLServer(ServerProcess):
    """`openssl s_server` for one connection, reversing each line it receives (`-rev`). `suites` are
    keys of SUITES or OpenSSL TLS 1.3 suite names (to offer suites the board does not have)."""

    def __init__(self, files: ServerFiles, suites=("gcm", "ccm"), groups=("P-256",), extra=()):
        self.files, self.suites, self.groups, self.extra = files, suites, groups, tuple(extra)
        self.port = None

    def start(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["openssl", "s_server", "-accept", f"127.0.0.1:{self.port}", "-cert", str(self.files.cert), "-key",
             str(self.files.key), "-CAfile", str(self.files.ca), "-Verify", "1", "-verify_return_error", "-tls1_3",
             "-ciphersuites", ":".join(SUITES.get(s, s) for s in self.suites), "-groups", ":".join(self.groups),
             "-naccept", "1", "-rev", *self.extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 10
        while True:
            line = _read_line(self.proc, max(0.1, deadline - time.monotonic()), "ACCEPT from openssl s_server")
            if line.startswith("ACCEPT"):
                return self

    def result(self, timeout=60.0) -> dict:
        """Waits for s_server to finish its one connection; its log parsed into a dict."""
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise TlsServerError("openssl s_server did not finish its connection") from None
        out = getattr(self.proc, "_pending", b"").decode(errors="replace") + out
        res = {"server": "openssl s_server", "log": out}
        for line in out.splitlines():
            for key, label in (("version", "Protocol version: "), ("cipher", "Ciphersuite: "),
                               ("client_subject", "Peer certificate: "), ("verification", "Verification: ")):
                if line.startswith(label):
                    res[key] = line[len(label):].strip()
        res["established"] = "CONNECTION ESTABLISHED" in out
        return res


class GnutlsServer(ServerProcess):
    """`gnutls-serv --echo` requiring a client certificate. gnutls-serv has no bind-address option:
    it listens on every interface for as long as the test runs; the board connects over 127.0.0.1."""

    def __init__(self, files: ServerFiles, suites=("gcm", "ccm"), groups=("SECP256R1",)):
        self.files, self.suites, self.groups = files, suites, groups
        self.port = None
        self.log = ""

    def start(self):
        self.port = free_port()
        priority = ("NONE:+VERS-TLS1.3:+AEAD:+SHA256:+SIGN-ECDSA-SECP256R1-SHA256:+COMP-NULL:"
                    + ":".join(GNUTLS_SUITES[s] for s in self.suites) + ":"
                    + ":".join("+GROUP-" + g for g in self.groups))
        self.proc = subprocess.Popen(
            ["gnutls-serv", "--port", str(self.port), "--echo", "--require-client-cert", "--verify-client-cert",
             "--x509certfile", str(self.files.cert), "--x509keyfile", str(self.files.key),
             "--x509cafile", str(self.files.ca), "--priority", priority, "--noticket"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 10
        while True:  # (it prints this line once the socket is bound)
            line = _read_line(self.proc, max(0.1, deadline - time.monotonic()), "gnutls-serv listening")
            if line.startswith("Echo Server listening on IPv4"):
                return self

    def result(self, timeout=5.0) -> dict:
        """gnutls-serv serves forever: stop it, then parse what it logged about the connection."""
        time.sleep(0.2)
        self.stop()
        res = {"server": "gnutls-serv", "log": self.log}
        for line in self.log.splitlines():
            for key, label in (("version", "- Version: "), ("cipher", "- Cipher: ")):
                if line.startswith(label):
                    res[key] = line[len(label):].strip().replace("TLS1.3", "TLSv1.3")
        res["client_trusted"] = "- Status: The certificate is trusted." in self.log
        begin, end = self.log.find("-----BEGIN CERTIFICATE-----"), self.log.find("-----END CERTIFICATE-----")
        if 0 <= begin < end:
            res["client_cert"] = x509.load_pem_x509_certificate(
                self.log[begin:end + 25].encode()).public_bytes(serialization.Encoding.DER).hex()
        res["received"] = "received cmd: " in self.log
        return res

    def stop(self):
        if self.proc is None or self.proc.stdout.closed:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.log += getattr(self.proc, "_pending", b"").decode(errors="replace") + out
        self.proc._pending = b""


# ---- the child-process server ---------------------------------------------------------------------

def _serve(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(args.cert, args.key)
    ctx.load_verify_locations(args.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    with socket.create_server(("127.0.0.1", args.port)) as srv:
        print(json.dumps({"listening": srv.getsockname()[1]}), flush=True)
        for _ in range(args.connections):
            conn, _ = srv.accept()
            conn.settimeout(args.timeout)
            print(json.dumps(_serve_one(ctx, conn)), flush=True)


def _serve_one(ctx, conn):
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError) as e:
        conn.close()
        return {"server": "python ssl", "error": str(e)}
    res = {"server": "python ssl", "version": tls.version(), "cipher": tls.cipher()[0]}
    der = tls.getpeercert(binary_form=True)
    cert = x509.load_der_x509_certificate(der)
    res["client_subject"] = cert.subject.rfc4514_string()
    res["client_cert"] = der.hex()
    try:
        line = b""
        while not line.endswith(b"\n") and len(line) < 4096:
            chunk = tls.recv(4096 - len(line))
            if not chunk:
                break
            line += chunk
        res["received"] = line.hex()
        if line:
            tls.sendall(REPLY_PREFIX + line)
        with contextlib.suppress(ssl.SSLError, OSError):
            tls.unwrap()
    except (ssl.SSLError, OSError) as e:
        res["error"] = str(e)
    finally:
        tls.close()
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m safebench.tls")
    sub = ap.add_subparsers(dest="cmd", required=True)
    serve = sub.add_parser("serve", help="TLS 1.3 echo server (suites and groups from OPENSSL_CONF)")
    serve.add_argument("--cert", required=True)
    serve.add_argument("--key", required=True)
    serve.add_argument("--ca", required=True)
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--connections", type=int, default=1)
    serve.add_argument("--timeout", type=float, default=180.0)
    args = ap.parse_args(argv)
    _serve(args)


# ---- the board's side and `safebench tls` ---------------------------------------------------------

def board_session(device, host, port, server_name=None, data=b"", ca_der=None, suites=None, verify="firmware",
                  timeout=180.0, hello_retry=False, timeout_ms=None) -> dict:
    """Have the board open a TLS 1.3 session (tls.echo), send `data` and read one line back. `timeout_ms`: how
    long the board waits for the connect and for each answer (its default: 30 s)."""
    params = {"host": host, "port": int(port), "data": data.hex(), "verify": verify}
    if timeout_ms is not None:
        params["timeout_ms"] = timeout_ms
    if hello_retry:
        params["hello_retry"] = True
    if server_name:
        params["server_name"] = server_name
    if ca_der is not None:
        params["ca"] = ca_der.hex()
    if suites:
        params["suites"] = list(suites)
    return device.call("tls.echo", timeout=timeout, **params)


def echo_with_host(device, state, suites=("gcm", "ccm"), verify="firmware", data=b"hello from the SIM\n") -> dict:
    """`safebench tls`: the board talks to a host server that requires the bench CA's client certificates.

    The server certificate comes from the bench CA too, which is the SIM's trust anchor on a simulated
    bench. Fails unless the server saw TLS 1.3 and a client certificate that chains to the CA and whose
    key made a fresh signature in the SIM.
    """
    from .pki import bench_ca

    ca = bench_ca(state)  # for another server: --connect HOST:PORT
    with tempfile.TemporaryDirectory() as tmp:
        files = make_server_files(tmp, ca, ca.cert.public_bytes(serialization.Encoding.PEM))
        with PythonServer(files, suites=suites) as server:
            board = board_session(device, "127.0.0.1", server.port, "localhost", data, suites=suites, verify=verify)
            seen = server.result()
    return check_session(device, board, seen, ca.cert, data)


def check_session(device, board: dict, seen: dict, ca_cert, data: bytes) -> dict:
    """What both ends saw, once checked: TLS 1.3, the SIM's certificate and key, the data each way."""
    from .verify import certificate_chain

    if "error" in seen or "client_cert" not in seen:
        raise VerificationError(f"the host server failed: {seen.get('error', 'no client certificate')}")
    der = bytes.fromhex(seen["client_cert"])
    certificate_chain(der, ca_cert)
    sim_key = client_key_is_sim_key(der, lambda m: bytes.fromhex(device.call("sim.sign", message=m.hex())["signature"]))
    if not sim_key:
        raise VerificationError("the TLS client certificate's key did not verify a signature made by the SIM")
    received = bytes.fromhex(board["received"])
    if seen["version"] != "TLSv1.3" or bytes.fromhex(seen.get("received", "")) != data:
        raise VerificationError(f"the server saw {seen['version']} and {seen.get('received')!r}")
    if received != REPLY_PREFIX + data:
        raise VerificationError(f"the board received {received!r}")
    return {"server": {k: seen[k] for k in ("server", "version", "cipher", "client_subject")},
            "client_key_is_sim_key": sim_key, "board": board, "sent": data.decode(errors="replace"),
            "received": received.decode(errors="replace")}


def connect(device, target: str, ca_path=None, server_name=None, data=b"hello from the SIM\n", suites=None,
            verify="firmware") -> dict:
    """`safebench tls --connect HOST:PORT`: the board opens a session to any server and reports."""
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--connect wants HOST:PORT, not {target!r}")
    ca_der = None
    if ca_path:
        ca_der = x509.load_pem_x509_certificate(Path(ca_path).read_bytes()).public_bytes(serialization.Encoding.DER)
    board = board_session(device, host.strip("[]"), int(port), server_name or host.strip("[]"), data, ca_der,
                          suites, verify)
    return {"board": board, "sent": data.decode(errors="replace"),
            "received": bytes.fromhex(board["received"]).decode(errors="replace")}


def say(res: dict) -> list:
    """Plain-words report of `safebench tls`."""
    b = res["board"]
    ops = b.get("sim_ops", {})
    lines = [f"{b['version']} {b['cipher']} ({b['group']}{', after a HelloRetryRequest' if b.get('hello_retry') else ''})"
             f" with {b.get('server_subject')} (issued by {b.get('server_issuer')})"]
    if "server" in res:
        lines.append(f"{res['server']['server']} saw {res['server']['version']} {res['server']['cipher']} and the client "
                     f"certificate {res['server']['client_subject']}, whose key is the SIM's key")
    lines.append(f"sent {res['sent']!r}, received {res['received']!r}")
    lines.append(f"handshake {b.get('handshake_ms')} ms, server signatures checked in {b.get('verify')}; SIM: "
                 + ", ".join(f"{k} x{v}" for k, v in sorted(ops.items()))
                 + (f", {b['apdus']} APDUs" if b.get("apdus") is not None else "")
                 + f"; heap used up to {b.get('heap_used_max')} bytes")
    return lines


# ---- checks on what a server saw ------------------------------------------------------------------

def client_key_is_sim_key(client_cert_der: bytes, sim_sign) -> bool:
    """True when the TLS client certificate's key verifies a fresh signature the SIM makes now.

    `sim_sign(message) -> raw r||s` asks the SIM (through the board's `sim.sign`) to sign a random challenge.
    """
    from .signing import check_signature

    cert = x509.load_der_x509_certificate(client_cert_der)
    challenge = os.urandom(16)
    try:
        check_signature(cert, challenge, sim_sign(challenge))
    except VerificationError:
        return False
    return True


def public_point(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


if __name__ == "__main__":
    main()
