"""Revocation: a device marked revoked in the registry, and the certificate revocation lists (RFC 5280 §5) of
the CAs that issue devices' certificates, published in <state>/crl (docs/enrolment.md).

The registry is what the rig's own services check (the ingest's verdict "revoked", the EST server's refusal
to re-enrol); the CRL file is for the TLS peers that check certificates themselves: Mosquitto's `crlfile`
holds one CRL per device CA, as OpenSSL's CRL check wants one for every client certificate's issuer.
"""

import datetime
import os
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from .errors import UsageError
from .pki import issued_by

CRL_FILE = "devices.crl.pem"  # in <state>/crl: the CRLs of every device CA, one after the other (PEM)
NEXT_UPDATE_DAYS = 30  # an OpenSSL peer refuses every client once the CRL is past its next update
_MIN_KID_PREFIX = 8


def find_devices(registry, device: str) -> list[str]:
    """The kids `device` names: an ICCID (every identity registered for it), or a kid or its first
    8+ hex digits. One line naming what was given when it names none, or more than one kid by prefix."""
    devices = registry.devices
    by_iccid = sorted(kid for kid, d in devices.items() if d["iccid"] == device)
    if by_iccid:
        return by_iccid
    prefix = device.lower()
    if len(prefix) >= _MIN_KID_PREFIX and all(c in "0123456789abcdef" for c in prefix):
        by_kid = sorted(kid for kid in devices if kid.startswith(prefix))
        if len(by_kid) > 1:
            raise UsageError(f"{device} is the start of {len(by_kid)} kids: give more of it")
        if by_kid:
            return by_kid
    raise UsageError(f"no registered device {device} in {registry.where}: give its ICCID or kid "
                     f"(at least {_MIN_KID_PREFIX} hex digits); `safebench provision` registers one")


def publish(state, registry, cas) -> dict:
    """Write <state>/crl/devices.crl.pem afresh: the CRL of each device CA of `cas` (pki.CertificateAuthority:
    its key signs, in its HSM token if it has one), listing the revoked devices it issued.
    Written by temporary file and rename, so a reader never sees half of it. Returns its path, the CRL
    number and how many certificates it lists."""
    folder = Path(state) / "crl"
    folder.mkdir(parents=True, exist_ok=True)
    number = _next_number(folder)
    revoked = [(x509.load_der_x509_certificate(bytes.fromhex(d["certificate"])), d["revoked_at"])
               for d in registry.devices.values() if d.get("revoked_at") is not None]
    now = datetime.datetime.now(datetime.timezone.utc)
    pems, listed = [], 0
    for ca in cas:
        builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.cert.subject)
                   .last_update(now - datetime.timedelta(minutes=5))
                   .next_update(now + datetime.timedelta(days=NEXT_UPDATE_DAYS))
                   .add_extension(x509.CRLNumber(number), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.cert.public_key()),
                                  critical=False))
        for cert, when in revoked:
            if issued_by(cert, ca.cert):
                builder = builder.add_revoked_certificate(
                    x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
                    .revocation_date(datetime.datetime.fromtimestamp(when, datetime.timezone.utc)).build())
                listed += 1
        pems.append(builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    path = folder / CRL_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(b"".join(pems))
    os.replace(temporary, path)
    (folder / "number").write_text(f"{number}\n")
    return {"crl": str(path), "number": number, "listed": listed}


def is_due(path) -> bool:
    """Whether the CRL file at `path` is missing or half-way to its next update: time to publish again."""
    try:
        return time.time() - path.stat().st_mtime > NEXT_UPDATE_DAYS * 86400 / 2
    except FileNotFoundError:
        return True


def revoke(state, registry, device: str, cas) -> dict:
    """Revoke every identity `device` names (find_devices) and publish the CRLs of `cas`."""
    kids = find_devices(registry, device)
    newly = [kid for kid in kids if registry.devices[kid].get("revoked_at") is None]
    for kid in newly:
        registry.revoke(kid)
    return {"device": device, "kids": kids, "newly": newly, **publish(state, registry, cas)}


def _next_number(folder) -> int:
    try:
        return int((folder / "number").read_text()) + 1
    except (OSError, ValueError):
        return 1

