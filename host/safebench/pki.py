"""The bench's certificate authority: issues device certificates for keys that live on SIMs.

Only public keys come to the host: a card's key pair is generated on the card and the certificate
for its public key is written back into the card's certificate file.
"""

import datetime
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import UnreadableFileError

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
_DAY = datetime.timedelta(days=1)


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "safebench"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _read(path, what):
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise UnreadableFileError(f"no {what} at {path}") from None
    except OSError as e:
        raise UnreadableFileError(f"cannot read the {what} {path}: {e.strerror}") from None


def load_ca_cert(path) -> x509.Certificate:
    """The PEM CA certificate at `path`; one line naming the file when it is missing or is none."""
    try:
        return x509.load_pem_x509_certificate(_read(path, "CA certificate"))
    except ValueError:
        raise UnreadableFileError(f"{path} is not a PEM certificate (no -----BEGIN CERTIFICATE----- block it can read)") from None


def issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    """Whether `ca_cert` signed `cert` (its validity aside)."""
    try:
        cert.verify_directly_issued_by(ca_cert)
        return True
    except Exception:  # InvalidSignature, another issuer's name, a key it cannot check
        return False


class CertificateAuthority:
    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey):
        self.cert, self.key = cert, key

    @classmethod
    def create(cls, common_name="safebench bench CA", key=None):
        """A new self-signed CA; its key made here, or `key` (an hsm.TokenKey, say: the CA signs in the token)."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        name = _name(common_name)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(_now() - _DAY).not_valid_after(_now() + 3650 * _DAY)
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                               critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        return cls(cert, key)

    @classmethod
    def load(cls, cert_path, key_path):
        cert = load_ca_cert(cert_path)
        try:
            key = serialization.load_pem_private_key(_read(key_path, "CA key"), None)
        except (ValueError, TypeError):  # TypeError: a key that wants a password
            raise UnreadableFileError(f"the CA key {key_path} is not an unencrypted PEM private key") from None
        if key.public_key() != cert.public_key():
            raise UnreadableFileError(f"the CA key {key_path} is not the key of the CA certificate {cert_path}")
        return cls(cert, key)

    @classmethod
    def load_or_create(cls, folder):
        """The CA kept in `folder` (ca.pem, ca.key), created there the first time."""
        folder = Path(folder)
        if (folder / CA_CERT).exists():
            try:
                return cls.load(folder / CA_CERT, folder / CA_KEY)
            except UnreadableFileError as e:
                raise UnreadableFileError(f"{e}: the CA in {folder} is damaged; restore it, or stop the bench and "
                                          f"remove {folder.parent} to start afresh with a new CA") from None
        ca = cls.create()
        ca.save(folder)
        return ca

    def save(self, folder):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        key_pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        fd = os.open(folder / CA_KEY, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)
        (folder / CA_CERT).write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue_server(self, public_key, names=("localhost",), ips=("127.0.0.1",), valid_from=None,
                     valid_until=None) -> x509.Certificate:
        """A TLS-server certificate for `public_key` naming `names` (DNS) and `ips` in subjectAltName.

        The validity defaults to yesterday .. in a year; tests pass past dates for an expired one.
        """
        import ipaddress

        san = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        return (x509.CertificateBuilder().subject_name(_name(names[0] if names else ips[0]))
                .issuer_name(self.cert.subject).public_key(public_key).serial_number(x509.random_serial_number())
                .not_valid_before(valid_from or _now() - _DAY).not_valid_after(valid_until or _now() + 365 * _DAY)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                               critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.SubjectAlternativeName(san), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                               critical=False)
                .sign(self.key, hashes.SHA256()))

    def issue_device(self, public_point: bytes, iccid: str, valid_days=3650) -> x509.Certificate:
        """A TLS-client and signing certificate for the P-256 key `public_point` (04||X||Y) on SIM `iccid`. Its
        commonName is the ICCID: the device's name at the MQTT broker, and in its topic (broker.TOPIC)."""
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_point)
        return self.issue_client(public_key, iccid, [x509.UniformResourceIdentifier(f"urn:iccid:{iccid}")],
                                 valid_days=valid_days)

    def issue_client(self, public_key, common_name, san=(), valid_days=365) -> x509.Certificate:
        """A TLS-client certificate named `common_name` (a device, or a service such as the ingest)."""
        builder = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(self.cert.subject)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(_now() - _DAY).not_valid_after(_now() + valid_days * _DAY)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
        return (builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                                      critical=False)
                .sign(self.key, hashes.SHA256()))


def bench_ca(state) -> CertificateAuthority:
    """The simulated bench's CA (<state>/ca), which issued its SIMs' certificates and is their trust anchor:
    the rig issues its servers' certificates (TLS, the MQTT broker) from it."""
    ca_dir = Path(state) / "ca"
    if not (ca_dir / CA_CERT).exists() or not (ca_dir / CA_KEY).exists():
        raise UnreadableFileError(f"no bench CA in {ca_dir}: bring the simulated bench up first (`safebench bench "
                                  "up`)")
    return CertificateAuthority.load(ca_dir / CA_CERT, ca_dir / CA_KEY)


def service_identity(ca: CertificateAuthority, folder, common_name):
    """(certificate, key) PEM files in `folder` of a service (the ingest) that is a client of the broker: made
    by `ca` the first time, then kept. Its key is a file of the host's, readable by its owner only."""
    folder = Path(folder)
    cert_path, key_path = folder / f"{common_name}.pem", folder / f"{common_name}.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    cert = ca.issue_client(key.public_key(), common_name)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
