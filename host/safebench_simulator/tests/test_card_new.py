"""`safebench card new`: a personalised card image of any profile, with a certificate from the CA."""

import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from safebench.cli import main
from safebench.pki import CertificateAuthority
from safebench.provision import new_sim_card
from safebench_simulator.card import Card


def card_new(capsys, *args):
    """Run the command in-process; returns (exit code, stdout, stderr)."""
    try:
        main(["card", "new", *args])
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def check_personalised(card, ca_cert):
    cert = x509.load_der_x509_certificate(card.file(card.role("client_cert")))
    point = cert.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    assert point == card.public_key(card.role("signing_key"))  # the certificate is for the card's own key
    cert.verify_directly_issued_by(ca_cert)
    assert f"urn:iccid:{card.iccid}" in str(
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    )


@pytest.mark.parametrize("profile", ["generic", "thales-mvp", "zariot"])
def test_card_new_with_the_bench_ca(tmp_path, capsys, profile):
    out = tmp_path / "card.json"
    code, stdout, err = card_new(
        capsys, "--profile", profile, "--out", str(out), "--state", str(tmp_path / "st"), "--json"
    )
    assert code == 0, err
    res = json.loads(stdout)
    card = Card.load(out)
    assert res["profile"] == card.profile["name"] == profile and res["iccid"] == card.iccid
    assert res["roles"]["signing_key"] == card.role("signing_key").hex().upper()
    assert res["factory"] is False and res["roles"]["enrolment_key"] is None  # --factory was not asked for
    ca = CertificateAuthority.load_or_create(tmp_path / "st" / "ca")  # created by the command
    check_personalised(card, ca.cert)
    if card.role("ca_cert") is not None:
        assert x509.load_der_x509_certificate(card.file(card.role("ca_cert"))) == ca.cert
    else:
        assert profile == "thales-mvp" and res["roles"]["ca_cert"] is None


def test_card_new_with_a_given_ca(tmp_path, capsys):
    ca = CertificateAuthority.create("my test CA")
    ca.save(tmp_path / "myca")
    out = tmp_path / "card.json"
    code, stdout, err = card_new(
        capsys,
        "--out",
        str(out),
        "--ca-cert",
        str(tmp_path / "myca" / "ca.pem"),
        "--ca-key",
        str(tmp_path / "myca" / "ca.key"),
        "--state",
        str(tmp_path / "st"),
    )
    assert code == 0, err
    assert "generic profile" in stdout and "my test CA" in stdout
    check_personalised(Card.load(out), ca.cert)
    assert not (tmp_path / "st").exists()  # the bench CA was not needed


def test_card_new_refuses_and_loses_nothing(tmp_path, capsys):
    out = tmp_path / "card.json"
    out.write_text("precious")
    state = ["--state", str(tmp_path / "st")]
    code, _, err = card_new(capsys, "--out", str(out), *state)
    assert code == 1 and "exists" in err and out.read_text() == "precious"
    code, _, err = card_new(capsys, "--out", str(tmp_path / "b.json"), "--ca-cert", "x.pem", *state)
    assert code == 1 and "go together" in err
    code, _, err = card_new(capsys, "--profile", "nokia", "--out", str(tmp_path / "c.json"), *state)
    assert code == 1 and "no card profile 'nokia'" in err and err.count("\n") == 1
    (tmp_path / "bad.pem").write_text("not a certificate")
    code, _, err = card_new(
        capsys,
        "--out",
        str(tmp_path / "d.json"),
        "--ca-cert",
        str(tmp_path / "bad.pem"),
        "--ca-key",
        str(tmp_path / "bad.pem"),
        *state,
    )
    assert code == 1 and err.startswith("safebench: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pem", "card.json"]


def test_new_sim_card_keeps_its_old_signature(tmp_path):
    card = new_sim_card(tmp_path / "card.json", tmp_path / "ca")
    assert card.profile["name"] == "generic" and Card.load(tmp_path / "card.json").iccid == card.iccid
    check_personalised(card, CertificateAuthority.load_or_create(tmp_path / "ca").cert)
