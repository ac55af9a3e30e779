"""Personalising SIMs: keys made on the card, certificates from a CA for the cards' public keys."""

from cryptography.hazmat.primitives import serialization

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
