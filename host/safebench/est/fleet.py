"""The bench's fleet CA: its key generated in a SoftHSM2 token in <state>/hsm (any PKCS#11 module by its
path), its certificate beside it. The token's user PIN is made the first time and kept in a file only its
owner reads; a real HSM's PIN is given as a file."""

import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from .. import hsm
from ..errors import HsmError
from ..pki import CertificateAuthority, load_ca_cert

TOKEN, KEY = "safebench-fleet", "fleet-ca"
CA_FILE = "fleet-ca.pem"


def fleet_ca(state, module=None, token=TOKEN, pin_file=None) -> CertificateAuthority:
    """The fleet CA whose key is `KEY` in the PKCS#11 `token`: SoftHSM2's in <state>/hsm unless `module` is
    given (then with the PIN of `pin_file`). Made the first time: the key in the token, the certificate in
    <state>/hsm/fleet-ca.pem."""
    folder = Path(state) / "hsm"
    if module is None:
        pin = _bench_pin(folder, pin_file)
        module = hsm.softhsm_token(folder, token, pin)
    else:
        if pin_file is None:
            raise HsmError("a PKCS#11 module needs its token's PIN: give --pin-file")
        pin = Path(pin_file).read_text().strip()
    key = hsm.TokenKey.open(module, token, pin, KEY, create=True)
    cert_file = folder / CA_FILE
    if cert_file.exists():
        cert = load_ca_cert(cert_file)
        if cert.public_key() != key.public_key():
            raise HsmError(f"{cert_file} is not the certificate of the key {KEY} in the token {token}")
        return CertificateAuthority(cert, key)
    ca = CertificateAuthority.create("safebench fleet CA", key=key)
    folder.mkdir(parents=True, exist_ok=True)
    cert_file.write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    return ca


def fleet_ca_cert(state):
    """The fleet CA's certificate (<state>/hsm/fleet-ca.pem) to check enrolled devices against, read without
    opening its token; None until the EST server has made it."""
    path = Path(state) / "hsm" / CA_FILE
    return load_ca_cert(path) if path.exists() else None


def device_cas(state) -> list:
    """The CAs whose devices the state's services accept: the bench CA, and the fleet CA once the EST server
    has made it (its key in the token: its CRL is signed there)."""
    from ..pki import bench_ca

    cas = [bench_ca(state)]
    if (Path(state) / "hsm" / CA_FILE).exists():
        cas.append(fleet_ca(state))
    return cas


def _bench_pin(folder, pin_file):
    if pin_file is not None:
        return Path(pin_file).read_text().strip()
    path = folder / "pin"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(8))
    return path.read_text().strip()

