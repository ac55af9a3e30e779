"""Card image: defaults, save/load round trip, atomic save."""

import json
import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from safebench_simulator.card import STANDARD_AID, Card, luhn_check_digit


def _luhn_valid(number: str) -> bool:
    return luhn_check_digit(number[:-1]) == number[-1]


def test_new_card_layout():
    card = Card.new()
    assert card.aid == STANDARD_AID
    assert len(card.iccid) == 19 and card.iccid.startswith("89") and _luhn_valid(card.iccid)
    assert len(card.imsi) == 15 and card.imsi.startswith("00101")
    point = card.public_key(b"\x01")
    assert len(point) == 65 and point[0] == 0x04
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)  # a valid P-256 point
    assert card.find("private_key", id=b"\x01").label == card.find("public_key", id=b"\x01").label
    assert card.file(b"\x02") == b"" and card.file(b"\x03") == b""
    assert not card.find("private_key", id=b"\x04").filled
    assert card.public_key(b"\x05") == b""


def test_luhn_known_iccid():
    assert luhn_check_digit("7992739871") == "3"  # the textbook Luhn example 79927398713
    assert Card.new(iccid="8949000000000000001", imsi="001010000000001").iccid == "8949000000000000001"


def test_no_private_key_bytes_in_public_surface():
    card = Card.new()
    scalar = bytes.fromhex(card._to_json()["containers"]["private_key"]["01"]["value"])
    info = card.find("private_key", id=b"\x01")
    assert scalar not in repr(info).encode() and not hasattr(info, "value")
    assert info.size == 32


def test_save_load_round_trip(tmp_path):
    card = Card.new()
    card.set_file(b"\x02", b"\x30\x82" + bytes(300))
    path = tmp_path / "card.json"
    card.save(path)
    loaded = Card.load(path)
    assert (loaded.iccid, loaded.imsi, loaded.aid) == (card.iccid, card.imsi, card.aid)
    assert loaded.public_key(b"\x01") == card.public_key(b"\x01")
    assert loaded.file(b"\x02") == card.file(b"\x02")
    assert loaded.objects("public_key") == card.objects("public_key")
    assert json.loads(path.read_text())["format"] == "safebench-card/1"
    assert os.listdir(tmp_path) == ["card.json"]  # no temporary file left behind


def test_crash_during_save_keeps_old_image(tmp_path, monkeypatch):
    path = tmp_path / "card.json"
    card = Card.new()
    card.save(path)
    before = path.read_bytes()
    # A crash after the temp file was written but before the rename: the image is untouched.
    (tmp_path / ".card.json.abc123.tmp").write_text('{"format": "safebench-card/1", "iccid": "89')
    card.set_file(b"\x03", b"new CA")

    def crash(*args):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        card.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert Card.load(path).file(b"\x03") == b""
    card.save(path)  # a later save still works next to the stale temp file
    assert Card.load(path).file(b"\x03") == b"new CA"


def test_load_rejects_garbage(tmp_path):
    path = tmp_path / "card.json"
    path.write_text('{"format": "something else"}')
    with pytest.raises(ValueError):
        Card.load(path)
    path.write_text('{"format": "safebench-card/1", "iccid": "1", "imsi": "2", "aid": "zz", "containers": {}}')
    with pytest.raises(ValueError):
        Card.load(path)


def test_profiles_make_their_layouts():
    mvp = Card.new("thales-mvp")
    assert [(i.id.hex(), i.label) for i in mvp.objects("public_key")] == [("0002", b"11"), ("0003", b"22")]
    assert mvp.role("signing_key") == bytes.fromhex("0002") and mvp.role("ca_cert") is None
    assert len(mvp.file(bytes.fromhex("0001"))) == 64
    assert not mvp.find("secret_key", id=bytes.fromhex("0004")).filled
    zariot = Card.new("zariot")
    assert zariot.role("signing_key") == b"006" and zariot.pair_of(b"006") == b"007"
    assert zariot.public_key(b"006") == zariot.public_key(b"007") != b""  # a private ID names its pair
    with pytest.raises(KeyError):
        zariot.public_key(b"999")
    with pytest.raises(KeyError, match="unknown role"):
        zariot.role("signing-key")


def test_secret_is_generated_and_hidden():
    card = Card.new()
    info = card.find("secret_key", id=b"\x06")
    assert info.size == 32 and not hasattr(info, "value")
    assert card._secret(b"\x06") not in repr(card.objects("secret_key")).encode()


def test_profile_and_roles_round_trip(tmp_path):
    card = Card.new("zariot")
    card.save(tmp_path / "card.json")
    loaded = Card.load(tmp_path / "card.json")
    assert loaded.profile == card.profile and loaded.profile["sig_length_form"] == 2
    assert {r: loaded.role(r) for r in ("signing_key", "client_cert", "secret")} == \
        {"signing_key": b"006", "client_cert": b"002", "secret": b"009"}


def test_volatile_keys_are_not_persisted(tmp_path):
    card = Card.new()
    card.generate_key_pair(b"\x04")
    assert card.find("private_key", id=b"\x04").volatile and card.public_key(b"\x04")
    card.save(tmp_path / "card.json")
    doc = json.loads((tmp_path / "card.json").read_text())
    assert doc["containers"]["private_key"]["04"]["value"] == ""
    assert doc["containers"]["public_key"]["04"]["value"] == ""
    assert card.public_key(b"\x04")  # still in RAM until a reset
    card.clear_volatile()
    assert card.public_key(b"\x04") == b"" and card.public_key(b"\x01")


def test_legacy_image_loads_as_generic(tmp_path):
    """Images written before profiles (no profile, no roles) still load."""
    card = Card.new()
    doc = card._to_json()
    del doc["profile"], doc["roles"]
    (tmp_path / "old.json").write_text(json.dumps(doc))
    old = Card.load(tmp_path / "old.json")
    assert old.profile["name"] == "generic" and old.role("client_cert") == b"\x02"
    assert old.public_key(b"\x01") == card.public_key(b"\x01")


@pytest.mark.parametrize("change", [
    lambda d: d["profile"].update(t0="yes"),
    lambda d: d["profile"].pop("modem"),
    lambda d: d["roles"].update(signing_key="09"),
    lambda d: d["roles"].update(favourite="01"),
    lambda d: d["containers"]["file"].update({"": {"label": "", "attributes": {}, "value": ""}}),  # empty ID
    lambda d: d.update(iccid=8949),
])
def test_load_rejects_bad_profile_sections(tmp_path, change):
    doc = Card.new()._to_json()
    change(doc)
    (tmp_path / "card.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError):
        Card.load(tmp_path / "card.json")


def test_put_public_key_checks_the_point():
    card = Card.new()
    with pytest.raises(ValueError):
        card.put_public_key(b"\x05", b"\x04" + bytes(64))
    card.put_public_key(b"\x05", card.public_key(b"\x01"))
    assert card.public_key(b"\x05") == card.public_key(b"\x01")
