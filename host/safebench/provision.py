"""Personalising SIMs: keys made on the card, certificates from a CA for the cards' public keys."""

from binascii import unhexlify

from cryptography.hazmat.primitives import serialization

from . import verify
from .pki import CertificateAuthority

SIGNING_KEY = b"\x01"
CLIENT_CERT_FILE = b"\x02"
CA_CERT_FILE = b"\x03"


def new_sim_card(path, ca_dir):
    """A new simulated card image at `path`: fresh keys, with a client certificate from the CA in `ca_dir`."""
    from safebench_sim.card import Card

    ca = CertificateAuthority.load_or_create(ca_dir)
    card = Card.new()
    cert = ca.issue_device(card.public_key(SIGNING_KEY), card.iccid)
    card.set_file(CLIENT_CERT_FILE, cert.public_bytes(serialization.Encoding.DER))
    card.set_file(CA_CERT_FILE, ca.cert.public_bytes(serialization.Encoding.DER))
    card.save(path)
    return card


def register_device(device, ca_cert, registry):
    """Read a SIM's client certificate through its board, check it against the CA, record the device."""
    iccid = device.call("sim.info", objects=False)["iccid"]
    cert_der = unhexlify(device.call("sim.read_file", file=CLIENT_CERT_FILE.hex())["data"])
    cert = verify.certificate_chain(cert_der, ca_cert)
    kid = registry.add(cert_der, iccid)
    registry.save()
    return {"iccid": iccid, "kid": kid, "subject": cert.subject.rfc4514_string(),
            "fingerprint": cert.fingerprint(cert.signature_hash_algorithm).hex()}
