"""Card image: defaults, save/load round trip, atomic save."""

import json
import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from safebench_sim.card import STANDARD_AID, Card, luhn_check_digit


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
