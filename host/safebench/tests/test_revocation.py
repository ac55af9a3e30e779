"""`safebench revoke`: the device is marked revoked in the registry and the device CAs' CRLs are published;
OpenSSL checks each CRL's signature and reads what it lists, the running broker (Mosquitto, restarted with
the new CRL) refuses the revoked device's TLS connection and still takes another device's, and `verify`
rejects the device's readings. The fleet CA's CRL is signed in its SoftHSM2 token."""

import base64
import json
import signal
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from safebench import hsm
from safebench.broker import executable
from safebench.pki import CA_CERT
from safebench.revocation import CRL_FILE
from safebench.testing.signed_readings import ReadingDevice
from safebench.tls import free_port

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(not executable(), reason="mosquitto is not installed (Debian mosquitto; "
                                                          "`make test` installs it)")]
EPOCH = 1_780_000_000
_CONNECT = bytes.fromhex("100c00044d5154540402003c0000")  # MQTT 3.1.1 CONNECT, clean session, no client id
CONNACK_ACCEPTED = bytes.fromhex("20020000")


def _mqtt_connect(address, ca, cert, key):
    """The broker's first bytes to an MQTT CONNECT over TLS 1.3 with this client certificate (CONNACK: 20 02
    00 00), or the ssl.SSLError of its alert. TLS 1.3 ends the client's handshake before the server has
    checked the client's certificate, so its verdict comes with the first read."""
    host, port = address.split(":")
    context = ssl.create_default_context(cafile=str(ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(str(cert), str(key))
    with socket.create_connection((host, int(port)), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.settimeout(1.0)
        try:  # a refusal is an alert now; a CONNECT sent before it could meet a closed socket (a reset) instead
            return tls.recv(4)
        except TimeoutError:
            tls.settimeout(10)
        tls.sendall(_CONNECT)
        return tls.recv(4)


def _openssl_crl(pem: bytes, ca):
    """What `openssl crl -verify -text` says of one CRL, and whether it checked against `ca`."""
    res = subprocess.run(["openssl", "crl", "-noout", "-text", "-verify", "-CAfile", str(ca)], input=pem,
                         capture_output=True, timeout=30)
    return res.returncode, res.stdout.decode() + res.stderr.decode()


def _crls(path):
    marker = b"-----END X509 CRL-----\n"
    return [part + marker for part in path.read_bytes().split(marker) if part.strip()]


def _serial(device):
    """The serial as OpenSSL prints it: whole bytes in hex, so a leading zero when the top nibble is 0."""
    digits = f"{x509.load_der_x509_certificate(device.cert_der).serial_number:X}"
    return digits.zfill(len(digits) + len(digits) % 2)


@pytest.mark.timeout(180)
def test_a_revoked_device_is_refused_by_the_broker_and_its_readings_by_verify(start_cli, run_cli, reading_device,
                                                                              tmp_path):
    state = tmp_path / "state"
    other = ReadingDevice(reading_device.ca, reading_device.registry, iccid="8944000000000000002")
    kid = reading_device.kid.hex()
    broker = start_cli("broker", "--listen-port", str(free_port()), "--json")
    listening = json.loads(broker.stdout.readline())
    assert listening["event"] == "listening" and listening["crl"] == str(state / "crl" / CRL_FILE)
    address, ca = listening["broker"], state / "ca" / CA_CERT
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    revoked_files, other_files = reading_device.client_files(tmp_path / "a"), other.client_files(tmp_path / "b")
    assert _mqtt_connect(address, ca, *revoked_files) == CONNACK_ACCEPTED

    res = run_cli("revoke", reading_device.ICCID, "--json")
    assert res.returncode == 0, res.stderr
    done = json.loads(res.stdout)
    assert done["kids"] == done["newly"] == [kid] and done["listed"] == 1 and done["number"] == 2, done
    assert json.loads(broker.stdout.readline())["event"] == "crl"  # it restarted with the new CRL

    with pytest.raises(ssl.SSLError, match="CERTIFICATE_REVOKED"):
        _mqtt_connect(address, ca, *revoked_files)
    assert _mqtt_connect(address, ca, *other_files) == CONNACK_ACCEPTED
    status, said = _openssl_crl((state / "crl" / CRL_FILE).read_bytes(), ca)
    assert status == 0 and "verify OK" in said, said
    assert f"Serial Number: {_serial(reading_device)}" in said and _serial(other) not in said, said

    readings = tmp_path / "readings.txt"
    readings.write_text(base64.b64encode(reading_device.reading(EPOCH, 1)).decode() + "\n")
    verified = run_cli("verify", str(readings))
    assert verified.returncode == 1 and "revoked" in verified.stdout, verified.stdout + verified.stderr

    again = run_cli("revoke", kid[:12])
    assert again.returncode == 0 and "1 of them revoked before" in again.stdout, again.stdout + again.stderr
    for device in ("8944000000000000099", "abc"):
        res = run_cli("revoke", device)
        assert res.returncode == 1 and res.stderr.count("\n") == 1 and "no registered device" in res.stderr, res.stderr
    broker.send_signal(signal.SIGINT)
    out, err = broker.communicate(timeout=30)
    assert broker.returncode == 0, err


@pytest.mark.skipif(hsm.softhsm_module() is None, reason="SoftHSM2 is not installed (Debian softhsm2; `make test` "
                                                         "installs it)")
def test_the_fleet_cas_crl_is_signed_in_its_token(start_cli, run_cli, reading_device, tmp_path):
    server = start_cli("est", "serve", "--port", "0", "--json")  # makes the fleet CA, its key in the token
    serving = json.loads(server.stdout.readline())
    server.send_signal(signal.SIGINT)
    server.communicate(timeout=30)
    res = run_cli("revoke", reading_device.ICCID, "--json")
    assert res.returncode == 0, res.stderr
    bench, fleet = _crls(Path(json.loads(res.stdout)["crl"]))
    fleet_status, fleet_said = _openssl_crl(fleet, serving["ca"])
    assert fleet_status == 0 and "verify OK" in fleet_said, fleet_said
    assert "No Revoked Certificates" in fleet_said  # the revoked device's certificate is the bench CA's
    bench_status, bench_said = _openssl_crl(bench, tmp_path / "state" / "ca" / CA_CERT)
    assert bench_status == 0 and f"Serial Number: {_serial(reading_device)}" in bench_said, bench_said
