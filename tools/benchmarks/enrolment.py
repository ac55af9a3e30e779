"""Enrolments per second against the EST server, its CA key in SoftHSM2 and, for comparison, in software.

DEVICES host-side cards enrol one after the other, each as a board would: its bootstrap certificate (of a
manufacturer CA) as the TLS 1.3 client certificate, a new P-256 key, a PKCS#10 request signed with it,
`simpleenroll`; every issued certificate is checked with cryptography against the CA. The cards' keys are
software keys here (the SIM's signing is the board's time, shown by the board benchmarks). Where the time
goes, each stage alone: the card's key pair and request and its TLS context, the TLS handshake, the server's
checks and its issuing (the CA's signature: in the token or in software), the registry's insert, and the
rest (HTTP, threads).

SoftHSM2 reads its configuration once per process: run measure() in a process that uses no other token.
"""

import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from safebench import hsm, tls
from safebench.database import open_database
from safebench.est import EstClient, EstServer
from safebench.pki import CertificateAuthority
from safebench.registry import Registry

DEVICES = 1000
PIN = "1234"


def measure(devices=DEVICES):
    """{"devices", "hsm": run, "software": run, "ratio"}; a run: enrolments/s and µs per stage. With no
    SoftHSM2 the "hsm" run is {"error": ...}."""
    with tempfile.TemporaryDirectory(prefix="safebench-enrolment-") as tmp:
        tmp = Path(tmp)
        manufacturer = CertificateAuthority.create("SIM manufacturer CA")
        cards = [_card(tmp / "cards", manufacturer, f"8944{i:015d}") for i in range(devices)]
        runs = {"software": _run(tmp / "software", CertificateAuthority.create("fleet CA, software key"),
                                 manufacturer, cards)}
        try:
            module = hsm.softhsm_token(tmp / "hsm", "bench", PIN)
            key = hsm.TokenKey.open(module, "bench", PIN, "fleet-ca", create=True)
            runs["hsm"] = _run(tmp / "hsm-run", CertificateAuthority.create("fleet CA, key in SoftHSM2", key=key),
                               manufacturer, cards)
        except Exception as e:  # noqa: BLE001 - the software run stands alone, the reason is shown
            runs["hsm"] = {"error": f"{type(e).__name__}: {e}"}
    ratio = (round(runs["hsm"]["per_second"] / runs["software"]["per_second"], 2)
             if "per_second" in runs["hsm"] else None)
    return {"devices": devices, **runs, "ratio": ratio}


def _card(folder, manufacturer, iccid):
    """A factory-state card's bootstrap identity: (iccid, certificate file, key file)."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    cert_file, key_file = folder / f"{iccid}.pem", folder / f"{iccid}.key"
    cert_file.write_bytes(manufacturer.issue_device(point, iccid).public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return iccid, cert_file, key_file


def _request(iccid):
    key = ec.generate_private_key(ec.SECP256R1())
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, iccid)]))
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))


def _run(folder, ca, manufacturer, cards):
    folder.mkdir(parents=True)
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    files = tls.make_server_files(folder / "server", ca, b"")
    stage = {"card: key pair and request": 0.0, "card: TLS context (its certificate, key, the CA)": 0.0}
    with Registry(open_database(folder / "registry.db")) as registry, \
            EstServer(ca, manufacturer.cert, registry, files) as server:
        t0 = time.perf_counter()
        for iccid, cert_file, key_file in cards:
            t = time.perf_counter()
            csr = _request(iccid)
            stage["card: key pair and request"] += time.perf_counter() - t
            t = time.perf_counter()
            client = EstClient(server.url, ca_file, cert_file, key_file)
            stage["card: TLS context (its certificate, key, the CA)"] += time.perf_counter() - t
            issued = client.enroll(csr)
            issued.verify_directly_issued_by(ca.cert)
        elapsed = time.perf_counter() - t0
        enrolled = len(registry.db.devices())
        handshake = _handshake(server, EstClient(server.url, ca_file, *cards[0][1:]), max(1, len(cards) // 10))
    n = len(cards)
    per_enrolment = elapsed / n
    stages = {name: s / n for name, s in stage.items()}
    stages.update(_server_stages(folder, ca, manufacturer, cards[: max(1, n // 10)]))
    stages["TLS 1.3 handshake, both sides"] = handshake
    stages["HTTP and the rest"] = max(0.0, per_enrolment - sum(stages.values()))
    return {"per_second": round(n / elapsed, 1), "enrolled": enrolled, "seconds": round(elapsed, 2),
            "stage_us": {name: round(s * 1e6) for name, s in stages.items()}}


def _handshake(server, client, n):
    """Seconds per TLS 1.3 handshake with the server (its client certificate checked), alone."""
    import socket

    t = time.perf_counter()
    for _ in range(n):
        with socket.create_connection((server.host, server.port)) as raw, \
                client.context.wrap_socket(raw, server_hostname=server.host):
            pass
    return (time.perf_counter() - t) / n


def _server_stages(folder, ca, manufacturer, cards):
    """Seconds per enrolment of the server's own stages, each alone, over `cards` (fresh requests)."""
    certs = [x509.load_pem_x509_certificate(cert_file.read_bytes()) for _, cert_file, _ in cards]
    csrs = [x509.load_der_x509_csr(_request(iccid)) for iccid, _, _ in cards]
    points = [c.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
              for c in csrs]
    t = time.perf_counter()
    for csr, cert in zip(csrs, certs, strict=True):
        assert csr.is_signature_valid
        cert.verify_directly_issued_by(manufacturer.cert)
    checks = time.perf_counter() - t
    t = time.perf_counter()
    issued = [ca.issue_device(point, iccid) for point, (iccid, _, _) in zip(points, cards, strict=True)]
    issuing = time.perf_counter() - t
    with Registry(open_database(folder / "stages.db")) as registry:
        t = time.perf_counter()
        for cert, (iccid, _, _) in zip(issued, cards, strict=True):
            registry.add(cert.public_bytes(serialization.Encoding.DER), iccid)
        inserting = time.perf_counter() - t
    n = len(cards)
    return {"server: proof of possession, bootstrap certificate": checks / n,
            "server: issue (the CA's signature)": issuing / n, "server: registry insert": inserting / n}
