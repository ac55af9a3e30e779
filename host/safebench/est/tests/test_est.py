"""The EST server with its CA key in SoftHSM2 (a real PKCS#11 token): the key is born in the token and cannot
leave it, a device enrols with its bootstrap certificate and gets an operational one (checked here with
cryptography), re-enrols with that, and every request that should be refused is."""

import datetime
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from safebench import hsm, tls
from safebench.errors import EnrolmentError, HsmError
from safebench.est import EstClient, EstServer
from safebench.pki import CertificateAuthority
from safebench.registry import Registry

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(hsm.softhsm_module() is None, reason="SoftHSM2 is not installed (Debian softhsm2; "
                                                                      "`make test` installs it)")]
ICCID = "8944000000000000042"
PIN = "4321"


@pytest.fixture(scope="module")
def fleet_ca(tmp_path_factory):
    """The issuing CA, its key generated in a SoftHSM2 token (one token folder for this test process)."""
    module = hsm.softhsm_token(tmp_path_factory.mktemp("hsm"), "fleet", PIN)
    return CertificateAuthority.create("safebench fleet CA", key=hsm.TokenKey.open(module, "fleet", PIN, "ca",
                                                                                   create=True))


@pytest.fixture(scope="module")
def manufacturer():
    return CertificateAuthority.create("SIM manufacturer CA")


@pytest.fixture
def est(fleet_ca, manufacturer, tmp_path):
    files = tls.make_server_files(tmp_path / "server", fleet_ca, b"")
    with Registry.of_state(tmp_path / "state") as registry, \
            EstServer(fleet_ca, manufacturer.cert, registry, files) as server:
        server.registry_for_test = registry
        yield server


def _pem(path, obj):
    path.write_bytes(obj.public_bytes(serialization.Encoding.PEM))
    return path


def _identity(folder, ca, name=ICCID):
    """(cert file, key file, key) of a client certificate of `ca` named `name`: the card's bootstrap identity."""
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    cert = _pem(folder / f"{name}.pem", ca.issue_device(point, name))
    key_file = folder / f"{name}.key"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert, key_file, key


def _csr(key, name=ICCID):
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))


def _client(est, fleet_ca, cert, key, folder):
    return EstClient(est.url, _pem(folder / "fleet-ca.pem", fleet_ca.cert), cert, key)


def test_the_ca_key_is_born_in_the_token_and_never_leaves(fleet_ca):
    key = fleet_ca.key
    assert isinstance(key, hsm.TokenKey) and not key.extractable
    with pytest.raises(HsmError, match="not extractable"):
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    fleet_ca.cert.verify_directly_issued_by(fleet_ca.cert)  # self-signed in the token


def test_a_device_enrols_with_its_bootstrap_certificate_and_again_with_the_one_it_got(est, fleet_ca, manufacturer,
                                                                                      tmp_path):
    cert, key_file, _ = _identity(tmp_path, manufacturer)
    client = _client(est, fleet_ca, cert, key_file, tmp_path)
    assert [c.subject for c in client.cacerts()] == [fleet_ca.cert.subject]
    operational = ec.generate_private_key(ec.SECP256R1())  # made in the SIM, on a board
    issued = client.enroll(_csr(operational))
    issued.verify_directly_issued_by(fleet_ca.cert)
    assert issued.public_key().public_numbers() == operational.public_key().public_numbers()
    assert issued.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == ICCID
    assert issued.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc) <= datetime.timedelta(days=30)
    kid = hashlib.sha256(issued.public_bytes(serialization.Encoding.DER)).hexdigest()
    assert est.registry_for_test.device(kid)["iccid"] == ICCID

    issued_file = _pem(tmp_path / "operational.pem", issued)
    op_key = tmp_path / "operational.key"
    op_key.write_bytes(operational.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    again = _client(est, fleet_ca, issued_file, op_key, tmp_path)
    renewed = again.enroll(_csr(ec.generate_private_key(ec.SECP256R1())), again=True)
    renewed.verify_directly_issued_by(fleet_ca.cert)
    with pytest.raises(EnrolmentError, match="bootstrap certificate"):
        again.enroll(_csr(operational))  # simpleenroll is for the bootstrap identity
    est.registry_for_test.revoke(kid)
    with pytest.raises(EnrolmentError, match="revoked"):
        again.enroll(_csr(operational), again=True)


def test_what_the_server_refuses(est, fleet_ca, manufacturer, tmp_path):
    cert, key_file, key = _identity(tmp_path, manufacturer)
    client = _client(est, fleet_ca, cert, key_file, tmp_path)
    good = _csr(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(EnrolmentError, match="proof of possession"):
        client.enroll(good[:-1] + bytes([good[-1] ^ 1]))  # its signature no longer checks
    with pytest.raises(EnrolmentError, match="not a PKCS#10"):
        client.enroll(b"not a request")
    with pytest.raises(EnrolmentError, match="simplereenroll takes the certificate this server issued"):
        client.enroll(good, again=True)
    stranger = _identity(tmp_path, CertificateAuthority.create("someone else's CA"), "8944000000000000099")
    with pytest.raises(EnrolmentError):  # the TLS handshake itself fails: not a client the server knows
        _client(est, fleet_ca, stranger[0], stranger[1], tmp_path).enroll(good)
    unnamed = _identity(tmp_path, manufacturer, "no-iccid")
    with pytest.raises(EnrolmentError, match="names no ICCID"):
        _client(est, fleet_ca, unnamed[0], unnamed[1], tmp_path).enroll(good)
    wrong_server = EstClient(est.url, _pem(tmp_path / "other.pem", manufacturer.cert), cert, key_file)
    with pytest.raises(EnrolmentError, match="TLS failed"):  # the server is always authenticated
        wrong_server.cacerts()
