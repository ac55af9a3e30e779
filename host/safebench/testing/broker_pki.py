"""The certificates a test's broker and its clients use: a broker CA (the board's trust anchor), the client
CAs the broker accepts (the devices' CA, and a services CA for the ingest), and the ingest's identity."""

from pathlib import Path
from types import SimpleNamespace

from cryptography.hazmat.primitives import serialization

from ..broker import INGEST_USER
from ..pki import CertificateAuthority, service_identity
from ..tls import make_server_files


def _pem(path, cert):
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def broker_pki(folder, devices_ca_cert):
    """In `folder`: `files` (the broker's tls.ServerFiles), `anchor` (the broker CA, hex DER, for a board),
    `broker_ca` (its PEM file), `broker_ca_key` (the CertificateAuthority), `services_ca`, and the ingest's
    `ingest_cert` and `ingest_key` files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    broker_ca, services_ca = (CertificateAuthority.create("safebench broker CA"),
                              CertificateAuthority.create("safebench services CA"))
    client_cas = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (devices_ca_cert, services_ca.cert))
    ingest_cert, ingest_key = service_identity(services_ca, folder, INGEST_USER)
    return SimpleNamespace(
        files=make_server_files(folder / "broker", broker_ca, client_cas), services_ca=services_ca,
        broker_ca_key=broker_ca, anchor=broker_ca.cert.public_bytes(serialization.Encoding.DER).hex(),
        broker_ca=_pem(folder / "broker-ca.pem", broker_ca.cert), ingest_cert=ingest_cert, ingest_key=ingest_key,
        folder=folder)
