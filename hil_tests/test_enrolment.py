"""Zero-touch enrolment on the board (docs/enrolment.md): a factory SIM (a bootstrap key and certificate, an empty
operational key container) makes its key pair, the board its certificate request, which the SIM signs, and EST
runs inside the board's TLS 1.3 with the SIM's bootstrap credential; the issued certificate, kept in the board's
flash under the SIM's signature, signs every reading after. Checked with cryptography and pycose against the
host's EST server; a flipped bit in flash, re-enrolment and a revoked device too."""

import contextlib
import re
import shutil

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from safebench import FIRMWARE_DIR, revocation, tls
from safebench.broker import Broker, executable
from safebench.errors import BoardEnrolmentError, RpcError, StoreError
from safebench.est import EstServer
from safebench.pki import CA_CERT, CertificateAuthority, load_ca_cert
from safebench.provision import new_sim_card
from safebench.readings import REVOKED, check
from safebench.registry import Registry
from safebench.testing.broker_pki import broker_pki
from safebench_simulator.card import Card

ENROLMENT_S = 600  # a key pair, two signatures and a TLS handshake on the SIM: minutes on an emulated Pico
VALIDITY_DAYS = 30
RENEW_DAYS = int(re.search(r"RENEW_DAYS = (\d+)", (FIRMWARE_DIR / "enrolment" / "enrolment_rpc.py").read_text())[1])


def _put_card(fault, path, image):
    fault.sim_remove()
    shutil.copyfile(image, path)
    fault.sim_insert()


@contextlib.contextmanager
def _est(simulated, folder, validity_days=VALIDITY_DAYS):
    """(server, registry): the host's EST server, the bench CA as the SIMs' manufacturer. The fleet CA's key is in
    software here (SoftHSM2 reads one token folder per process, and this process is the whole HIL session's):
    the server with its key in the token is host/safebench/est/tests', and `safebench enroll`'s test."""
    bootstrap = load_ca_cert(simulated.dir / "ca" / CA_CERT)
    ca = CertificateAuthority.create("safebench fleet CA")
    files = tls.make_server_files(folder / "est", ca, bootstrap.public_bytes(serialization.Encoding.PEM))
    with Registry.of_state(folder) as registry, EstServer(ca, bootstrap, registry, files, 0,
                                                          validity_days=validity_days) as server:
        yield server, registry


@pytest.fixture
def factory_sim(simulated, fault, device, board_files, tmp_path):
    """The session's board with a factory SIM of the bench CA in it (its Card); its own SIM back after, and
    its flash without an enrolled identity."""
    card = simulated.board()["card"]
    home_card = shutil.copyfile(card, tmp_path / "home-card.json")
    factory = new_sim_card(tmp_path / "factory-card.json", simulated.dir / "ca", factory=True)
    _put_card(fault, card, tmp_path / "factory-card.json")
    try:
        yield factory
    finally:
        if fault.status()["sim"] != "removed":
            fault.sim_remove()
        shutil.copyfile(home_card, card)
        fault.sim_insert()
        board_files(device.port).remove("identity.")  # the session's board signs with its own SIM again
        device.reboot()
    assert device.call("identity")["store"] == "card"


def _enrol(device, server):
    done = device.call("enroll", timeout=ENROLMENT_S, host=server.host, port=server.port,
                       ca=server.ca.cert.public_bytes(serialization.Encoding.DER).hex(), timeout_ms=ENROLMENT_S * 1000)
    return dict(done, kid=done["kid"].lower())


def _identity(device):
    got = device.call("identity")
    got["kid"] = got["kid"].lower()  # as the registry writes a kid
    return got, x509.load_der_x509_certificate(bytes.fromhex(got["certificate"]))


@pytest.mark.timeout(3 * ENROLMENT_S)
def test_a_factory_sim_enrols_itself_and_signs_under_its_new_identity(simulated, board, device, factory_sim,
                                                                     board_files, tmp_path):
    card, factory = simulated.board()["card"], factory_sim
    with _est(simulated, tmp_path / "pki") as (server, registry):
        cas = [load_ca_cert(simulated.dir / "ca" / CA_CERT), server.ca.cert]
        before, bootstrap = _identity(device)
        assert before["store"] == "card" and bootstrap.issuer == cas[0].subject  # the manufacturer's certificate

        done = _enrol(device, server)
        assert done["operation"] == "simpleenroll" and done["iccid"] == factory.iccid
        now, cert = _identity(device)
        assert now["store"] == "flash" and now["kid"] == done["kid"] != before["kid"]
        cert.verify_directly_issued_by(server.ca.cert)  # the fleet CA's
        chain = [x509.load_der_x509_certificate(bytes.fromhex(c)) for c in now["chain"]]
        assert chain == [server.ca.cert]
        on_card = Card.load(card)  # the SIM's own storage: its new key pair is the certificate's
        point = on_card.public_key(on_card.role("enrolment_key"))
        assert cert.public_key().public_bytes(serialization.Encoding.X962,
                                              serialization.PublicFormat.UncompressedPoint) == point
        assert registry.device(now["kid"])["iccid"] == factory.iccid  # the server registered it

        reading = check(bytes.fromhex(device.call("reading")["cose"]), registry, cas, {})
        assert reading.ok and reading.kid == now["kid"], reading.reason
        device.reboot()  # kept in flash: the same identity after a reset, checked by the SIM again
        assert _identity(device)[0]["kid"] == now["kid"]

        board_files(device.port).flip("identity.bin", 300)  # inside the certificate
        device.reboot()
        for method in ("reading", "identity"):
            with pytest.raises(StoreError, match="does not check with the SIM"):
                device.call(method)
        again = _enrol(device, server)  # what the SIM does not vouch for is replaced: the bootstrap credential
        assert again["operation"] == "simpleenroll" and again["kid"] != now["kid"]
        assert check(bytes.fromhex(device.call("reading")["cose"]), registry, cas, {}).ok

        if not board.get("emulated"):  # each TLS session costs an emulated Pico a minute: the simulated boards
            renewed = _enrol(device, server)  # show re-enrolment with the operational credential
            assert renewed["operation"] == "simplereenroll" and renewed["kid"] != again["kid"]
            assert _identity(device)[1].public_key() == x509.load_der_x509_certificate(
                bytes.fromhex(registry.device(again["kid"])["certificate"])).public_key()  # the same key, renewed
            again = renewed

        revocation.revoke(tmp_path / "pki", registry, again["kid"], [server.ca])
        assert check(bytes.fromhex(device.call("reading")["cose"]), registry, cas, {}).code == REVOKED
        with pytest.raises(BoardEnrolmentError, match="revoked"):
            _enrol(device, server)


@pytest.mark.timeout(3 * ENROLMENT_S)
@pytest.mark.skipif(not executable(), reason="mosquitto is not installed (Debian mosquitto; `make test` installs it)")
def test_an_enrolled_board_renews_its_certificate_by_itself_and_a_revoked_one_is_refused_by_the_broker(simulated, device, factory_sim,
                                                                                tmp_path):
    """A certificate with less than RENEW_DAYS left is renewed at the next mqtt.connect, at the EST server the
    board enrolled with (kept in its flash), before the broker sees it: the broker takes the renewed one. Once
    the device is revoked the broker refuses it by the CRL."""
    with _est(simulated, tmp_path / "pki", validity_days=RENEW_DAYS - 1) as (server, registry):
        first = _enrol(device, server)
        pki = broker_pki(tmp_path / "mqtt", server.ca.cert)
        with Broker(pki.files) as broker:
            opened = device.call("mqtt.connect", timeout=ENROLMENT_S, host="127.0.0.1", port=broker.port,
                                 ca=pki.anchor, server_name="localhost")
            try:
                renewal = opened.get("renewal")
                assert renewal and renewal["operation"] == "simplereenroll", opened
                now = _identity(device)[0]
                assert now["kid"] == renewal["kid"].lower() != first["kid"]
                assert registry.device(now["kid"])["iccid"] == factory_sim.iccid
                assert opened["client_id"] == factory_sim.iccid  # the broker took the renewed certificate
                device.call("mqtt.ping", timeout=ENROLMENT_S)
            finally:
                device.call("mqtt.close")

        # Revoked: the broker, given the fleet CA's CRL (read by OpenSSL in Mosquitto), ends the board's handshake.
        crl = revocation.revoke(tmp_path / "pki", registry, now["kid"], [server.ca])["crl"]
        with Broker(pki.files, crl=crl) as broker:
            with pytest.raises(RpcError, match="ended the connection once it had the SIM's certificate"):
                device.call("mqtt.connect", timeout=ENROLMENT_S, host="127.0.0.1", port=broker.port, ca=pki.anchor,
                            server_name="localhost")


def test_the_sequence_counter_in_flash_is_sealed_by_the_sim(device, board_files):
    """Data at rest: the counter's slots carry a tag whose key the SIM derives (Compute PRF on its secret). A
    changed slot is reported and never counted from: the count goes on in a new, later epoch."""
    taken = [device.call("reading") for _ in range(2)]  # both slots written
    for slot in ("seq.a", "seq.b"):
        board_files(device.port).flip(slot, 7)  # the low byte of its value
    device.reboot()
    after = device.call("reading")
    assert "failed its seal" in after.get("warning", ""), after
    assert after["epoch"] > taken[-1]["epoch"] and after["seq"] == 1  # no number of the old count again
    assert "warning" not in device.call("reading")  # said once; the new slots hold
