"""Factory cards: the SIM as it ships before zero-touch enrolment (docs/enrolment.md), for every profile.

A bootstrap key pair and its certificate from the manufacturer CA play signing_key and client_cert; the
profile's own signing key (role enrolment_key), its public key and its certificate file stay empty until the
SIM generates the operational key at enrolment.
"""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from safebench.pki import CertificateAuthority
from safebench.provision import new_sim_card
from safebench_simulator.card import KINDS, ROLES, Card
from safebench_simulator.iotsafe import FUNCTION_KEY_GENERATION
from safebench_simulator.modem import Modem

PROFILES = ["generic", "thales-mvp", "zariot"]
# (bootstrap pair, bootstrap certificate file, operational key): the two new IDs follow each profile's highest
# one at its width; ZARIOT's ASCII-digit IDs stay digits ("010", "011").
IDS = {"generic": ("07", "08", "01"), "thales-mvp": ("0005", "0006", "0002"),
       "zariot": ("303130", "303131", "303036")}


@pytest.fixture(scope="module")
def ca():
    return CertificateAuthority.create("test manufacturer CA")


def ids(card):
    return {(kind, o.id) for kind in KINDS for o in card.objects(kind)}


@pytest.mark.parametrize("profile", PROFILES)
def test_a_factory_card_holds_a_bootstrap_identity_and_an_empty_operational_key(tmp_path, ca, profile):
    card = new_sim_card(tmp_path / "card.json", ca=ca, profile=profile, factory=True)
    plain = Card.new(profile)
    key, cert_file, enrolment = (card.role(name) for name in ("signing_key", "client_cert", "enrolment_key"))
    assert (key.hex(), cert_file.hex(), enrolment.hex()) == IDS[profile]
    assert enrolment == plain.role("signing_key")  # the profile's operational key, where the board expects it
    assert card.find("private_key", id=key).filled and len(card.public_key(key)) == 65
    assert not card.find("private_key", id=enrolment).filled and card.public_key(enrolment) == b""
    assert card.file(plain.role("client_cert")) == b""  # not even the Thales profile's stand-in content
    for kind, object_id in (("private_key", enrolment), ("public_key", card.pair_of(enrolment))):
        assert card.find(kind, id=object_id).attribute("functions") & FUNCTION_KEY_GENERATION  # B9 will work
    # the bootstrap containers are of the same make as the operational ones (the Thales public keys: no read)
    for kind, new, old in (("private_key", key, plain.role("signing_key")),
                           ("public_key", card.pair_of(key), plain.pair_of(plain.role("signing_key"))),
                           ("file", cert_file, plain.role("client_cert"))):
        assert card.find(kind, id=new).attributes == plain.find(kind, id=old).attributes
    cert = x509.load_der_x509_certificate(card.file(cert_file))
    assert cert.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint) == card.public_key(key)
    # the EST server takes the ICCID from the bootstrap certificate's commonName
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == card.iccid
    cert.verify_directly_issued_by(ca.cert)
    if plain.role("ca_cert") is not None:
        assert card.file(card.role("ca_cert")) == ca.cert.public_bytes(Encoding.DER)


@pytest.mark.parametrize("profile", PROFILES)
def test_the_bootstrap_containers_take_unused_ids_as_wide_as_the_profiles(profile):
    before = ids(Card.new(profile))
    added = ids(Card.new(profile, factory=True)) - before
    assert len(added) == 3 and {len(i) for _, i in added} == {len(i) for _, i in before}
    assert not {i for _, i in added} & {i for _, i in before}  # no ID the profile uses, whatever its kind


@pytest.mark.parametrize("profile", PROFILES)
def test_a_factory_card_image_keeps_its_roles(tmp_path, profile):
    card = Card.new(profile, factory=True)
    card.save(tmp_path / "card.json")
    loaded = Card.load(tmp_path / "card.json")
    assert {name: loaded.role(name) for name in ROLES} == {name: card.role(name) for name in ROLES}
    assert loaded.role("enrolment_key") is not None
    assert loaded.public_key(loaded.role("signing_key")) == card.public_key(card.role("signing_key"))
    assert not loaded.find("private_key", id=loaded.role("enrolment_key")).filled


def test_a_card_made_plainly_has_no_enrolment_key():
    card = Card.new()
    assert card.role("enrolment_key") is None and card.role("signing_key") == b"\x01"


def test_the_modem_generates_the_operational_key_of_a_factory_card(tmp_path, ca):
    """What enrolment asks first: Generate Key Pair on the empty key, over AT+CSIM, saved to the image."""
    path = tmp_path / "card.json"
    card = new_sim_card(path, ca=ca, factory=True)
    modem = Modem(path)

    def csim(apdu):
        reply = modem.feed(f'AT+CSIM={len(apdu)},"{apdu}"\r'.encode()).decode()
        return reply.split('"')[1]

    modem.feed(b"ATE0\r")
    assert csim("0070000001") == "019000"
    assert csim("01A4040007A0000005590010") == "9000"
    waiting = csim("81B9000003840101")  # the enrolment key, 01
    assert waiting.startswith("61")  # the generic card is T=0: its answer waits for GET RESPONSE
    answer = csim("81C00000" + waiting[2:])
    assert answer.endswith("9000")
    saved = Card.load(path)
    point = saved.public_key(b"\x01")
    assert saved.find("private_key", id=b"\x01").filled and point.hex().upper() in answer
    assert saved.public_key(b"\x07") == card.public_key(b"\x07")  # the bootstrap pair as it was
