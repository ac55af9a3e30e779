"""Personalising SIMs: keys made on the card, certificates from a CA for the cards' public keys.

A simulated card is made from a card profile (``safebench_simulator/profiles``); its roles say which
containers hold the signing key, the client certificate and the CA certificate, so any profile
can be personalised. The private key never leaves the card image: only its public key comes here.
A factory card (``factory=True``) is personalised with its bootstrap identity only: its certificate is
the manufacturer CA's for the bootstrap key, and the operational key waits, empty, for enrolment.
"""

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import verify
from .errors import ProvisionError
from .pki import CertificateAuthority


def new_sim_card(path, ca_dir=None, profile="generic", ca=None, factory=False):
    """A new simulated card image at `path`: fresh keys, a certificate from `ca` (or the CA in `ca_dir`).

    The CA certificate goes into the card's CA-certificate file when its profile has one. `factory`: the card
    as it ships before enrolment (Card.new's): the certificate is the bootstrap key's, in the bootstrap file.
    """
    from safebench_simulator.card import Card

    if ca is None and ca_dir is None:
        raise ProvisionError("no CA: give a CertificateAuthority or the folder of one")
    card = Card.new(profile, factory=factory)  # first: a bad profile leaves nothing behind
    signing_key, client_cert = card.role("signing_key"), card.role("client_cert")
    if signing_key is None or client_cert is None:
        raise ProvisionError(f"profile {card.profile['name']!r} has no signing key or client certificate")
    if ca is None:
        ca = CertificateAuthority.load_or_create(ca_dir)
    cert = ca.issue_device(card.public_key(signing_key), card.iccid)
    card.set_file(client_cert, cert.public_bytes(serialization.Encoding.DER))
    if card.role("ca_cert") is not None:
        card.set_file(card.role("ca_cert"), ca.cert.public_bytes(serialization.Encoding.DER))
    card.save(path)
    return card


def card_new(out, state, profile="generic", ca_cert=None, ca_key=None, factory=False):
    """`safebench card new [--factory]`: a personalised card image at `out` (never overwritten); returns what
    it holds."""
    out = Path(out)
    if out.exists():
        raise ProvisionError(f"{out} exists: give another --out or remove it first")
    if (ca_cert is None) != (ca_key is None):
        raise ProvisionError("--ca-cert and --ca-key go together")
    ca = CertificateAuthority.load(ca_cert, ca_key) if ca_cert else None
    card = new_sim_card(out, Path(state) / "ca", profile=profile, ca=ca, factory=factory)
    return describe(card, out)


def describe(card, path):
    """The identity, layout and certificate of a personalised card, as plain data. On a factory card (its
    enrolment key still empty) the signing key and certificate are the bootstrap ones."""
    from safebench_simulator.card import ROLES

    cert = x509.load_der_x509_certificate(card.file(card.role("client_cert")))
    roles = {name: (card.role(name).hex().upper() if card.role(name) is not None else None) for name in ROLES}
    enrolment_key = card.role("enrolment_key")
    factory = enrolment_key is not None and not card.find("private_key", id=enrolment_key).filled
    return {"card": str(path), "profile": card.profile["name"], "iccid": card.iccid, "imsi": card.imsi,
            "aid": card.aid.hex().upper(), "roles": roles, "factory": factory,
            "public_key": card.public_key(card.role("signing_key")).hex().upper(),
            "subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string()}


def register_device(device, ca_cert, registry, rebind=False, operator=None):
    """Read a SIM's client certificate through its board, check it against the CA, record the device and bind
    it to this board (the board's unique ID, as its readings name it). A SIM bound to another board is a
    moved SIM: refused, unless `rebind` (`safebench bind`: the operator moved it). With the `operator`'s
    binding key the board records its SIM too (binding.bind_board; a board bound to another SIM likewise)."""
    from binascii import unhexlify

    from .registry import kid_of

    iccid = device.call("sim.info", objects=False)["iccid"]
    cert_der = unhexlify(device.call("identity")["certificate"])  # the one it signs under: enrolled, or the card's
    cert = verify.certificate_chain(cert_der, ca_cert)
    board = device.call("info").get("board_id")  # None from firmware that names no board
    kid = kid_of(cert_der)
    bound = registry.db.devices(kid).get(kid, {}).get("board_id")  # as it is now
    if bound and board != bound and not rebind:
        raise ProvisionError(f"the SIM {iccid} (kid {kid[:16]}...) belongs to board {bound}, and this is board "
                             f"{board or 'that names none'}: a moved SIM. If you moved it, `safebench bind` binds it "
                             "to this board")
    on_board = None
    if operator is not None:
        from .binding import bind_board

        on_board = bind_board(device, operator, move=rebind)
    registry.add(cert_der, iccid)
    if board:
        registry.bind(kid, board)
    registry.save()
    return {"iccid": iccid, "kid": kid, "subject": cert.subject.rfc4514_string(), "board_id": board,
            "bound_before": bound if bound != board else None,
            "board_binding": on_board and {"state": on_board["state"], "generation": on_board["bound"]["generation"]},
            "fingerprint": cert.fingerprint(cert.signature_hash_algorithm).hex()}
