"""Card profiles: the shipped ones load, bad ones are refused, every switch changes behaviour, timing."""

import copy
import json

import pytest

from safebench_simulator import profile as profiles
from safebench_simulator import uicc as uicc_module
from safebench_simulator.card import Card
from safebench_simulator.iotsafe import IoTSafeApplet, object_record
from safebench_simulator.uicc import Uicc


def card_with(**switches):
    """A generic card whose profile has some switches changed."""
    card = Card.new()
    for name, value in switches.items():
        assert name in card.profile
        card.profile[name] = value
    return card


def bench(card):
    """A UICC with the card's applet selected on the basic channel; returns a hex-in, hex-out function."""
    uicc = Uicc(card, {card.aid: IoTSafeApplet(card)}, realtime=False)

    def tx(hex_apdu):
        return uicc.transmit(bytes.fromhex(hex_apdu.replace(" ", ""))).hex().upper()

    assert tx("00A404" + f"00{len(card.aid):02X}" + card.aid.hex()) == "9000"
    return tx


def test_shipped_profiles():
    assert profiles.names() == ["generic", "thales-mvp", "zariot"]
    aids = {name: Card.new(name).aid.hex().upper() for name in profiles.names()}
    assert aids == {
        "generic": "A0000005590010",
        "thales-mvp": "A00000003053F12401770101495341",
        "zariot": "A0000005590010",
    }
    for name in profiles.names():
        doc = profiles.load(name)
        assert doc["modem"] == {
            "quoted_hex": True,
            "space_after_colon": True,
            "ccho_prefix": True,
            "max_line": 1100,
            "baud": 115200,
        }
        assert doc["timing"]["latency_ms"]["B9"] == 1500 and "estimate" in doc["source"]
        card = Card.new(name)
        assert card.profile["name"] == name and card.profile["modem"] == doc["modem"]
        for role in ("signing_key", "client_cert", "peer_key", "secret"):
            assert card.role(role) is not None


def test_generic_profile_is_the_default():
    assert Card.new().profile == Card.new("generic").profile == profiles.card_profile(profiles.load())


def test_profile_from_a_file(tmp_path):
    doc = profiles.load("generic")
    doc["name"] = "mine"
    doc["containers"][0]["id"] = "0A0B0C"
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(doc))
    card = Card.new(path)
    assert card.profile["name"] == "mine" and card.role("signing_key") == bytes.fromhex("0A0B0C")
    assert len(card.public_key(bytes.fromhex("0A0B0C"))) == 65  # the pair, found by label


def broken(change):
    doc = copy.deepcopy(profiles.load("generic"))
    change(doc)
    return doc


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda d: d.update(sig_length_form=3), "sig_length_form"),
        (lambda d: d.update(t0=1), "t0"),  # an integer is not a boolean
        (lambda d: d.update(colour="blue"), "unknown ['colour']"),
        (lambda d: d.pop("cla"), "missing ['cla']"),
        (lambda d: d.update(max_sessions=0), "max_sessions"),
        (lambda d: d["modem"].update(echo=True), "modem"),
        (lambda d: d["timing"]["latency_ms"].pop("default"), "default"),
        (lambda d: d["timing"]["latency_ms"].update(XYZ=5), "not hex"),
        (lambda d: d["containers"][0].update(value="00" * 32), "never written"),  # a private key in a profile
        (lambda d: d["containers"][2].update(value="generate"), "only private keys and secrets"),
        (lambda d: d["containers"][1].update(label="other"), "no public key labelled"),
        (lambda d: d["containers"][2].update(id="03"), "used twice"),
        (lambda d: d["containers"][2].update(role="signing_key"), "role"),
        (lambda d: d["containers"][2].update(label="x" * 61), "label"),
        (lambda d: d["containers"][2]["attributes"].update(colour="01"), "attributes"),
        (lambda d: d["applet_info"].update(proprietary_id="00"), "proprietary_id"),
        (lambda d: d.update(aid="A0"), "aid"),
    ],
)
def test_bad_profiles_are_refused(change, words):
    with pytest.raises(profiles.ProfileError, match=words.replace("[", r"\[").replace("]", r"\]")):
        profiles.check(broken(change))


def test_unknown_profile_name():
    with pytest.raises(profiles.ProfileError, match="generic, thales-mvp, zariot"):
        Card.new("nokia")


# -- every switch changes something a host can see ---------------------------------


@pytest.mark.parametrize(
    "cla, answers",
    [("both", ("9000", "9000")), ("proprietary", ("6E00", "9000")), ("interindustry", ("9000", "6E00"))],
)
def test_switch_cla(cla, answers):
    tx = bench(card_with(cla=cla))
    assert (tx("00CB000044")[-4:], tx("80CB000044")[-4:]) == answers
    assert tx("00C0000001") == "6985"  # GET RESPONSE is the UICC's: both classes always reach it


@pytest.mark.parametrize("form, prefix", [(1, "3340"), (2, "330040")])
def test_switch_sig_length_form(form, prefix):
    tx = bench(card_with(sig_length_form=form))
    assert tx("802A00010D 840101 A10103 91020001 920104") == "9000"
    expected = 66 if form == 1 else 67
    assert tx("802B800122 9E20" + "11" * 32) == f"61{expected:02X}"
    assert tx(f"00C00000{expected:02X}").startswith(prefix)


def records(data, wrapper_tags):
    """Split a list into (tag, length) headers: the wrapper TLVs at the top level."""
    out, i = [], 0
    while i < len(data):
        assert data[i] in wrapper_tags, data[i:].hex()
        out.append(data[i])
        i += 2 + data[i + 1]
    assert i == len(data)
    return out


def object_list(tx):
    """The whole object list, following 6300 continuations."""
    data, answer = b"", tx("80CB0100")
    while answer.endswith("6300"):
        data += bytes.fromhex(answer[:-4])
        answer = tx("80CB0101")
    assert answer.endswith("9000")
    return data + bytes.fromhex(answer[:-4])


def test_switch_object_list_shape():
    generic_objects = 2 + 3 + 2 + 1  # private, public, file, secret containers of the generic profile
    unwrapped = object_list(bench(card_with(object_list_shape="unwrapped")))
    assert unwrapped[0] == 0x74  # the first record's label
    per_object = object_list(bench(card_with(object_list_shape="per_object")))
    assert records(per_object, {0xC1, 0xC2, 0xC3, 0xC4}) == [0xC1] * 2 + [0xC2] * 3 + [0xC4] + [0xC3] * 2
    assert len(per_object) == len(unwrapped) + 2 * generic_objects
    per_class = object_list(bench(card_with(object_list_shape="per_class")))
    assert records(per_class, {0xC1, 0xC2, 0xC3, 0xC4}) == [0xC1, 0xC2, 0xC4, 0xC3]
    assert len(per_class) == len(unwrapped) + 2 * 4


def test_object_list_continuation_6300():
    card = card_with(object_list_chunk=40)
    full = object_list(bench(Card.new()))
    assert len(full) > 3 * 40
    tx = bench(card)
    got, answer = b"", tx("80CB0100")
    while answer.endswith("6300"):
        assert len(answer) == 2 * 40 + 4
        got += bytes.fromhex(answer[:-4])
        answer = tx("80CB0101")
    assert answer.endswith("9000")
    got += bytes.fromhex(answer[:-4])
    assert got == full
    assert tx("80CB0101") == "6985"  # nothing left to continue
    assert tx("80CB0100").endswith("6300") and tx("8084000004").endswith("9000")
    assert tx("80CB0101") == "6985"  # another command ended the transfer
    assert (
        tx("80CB010010").endswith("6300") and len(tx("80CB010110")) == 2 * 16 + 4
    )  # a smaller Le, smaller parts


def test_object_list_over_255_bytes_continues_with_default_chunk():
    card = Card.new()
    full = b"".join(
        object_record(info)
        for kind in ("private_key", "public_key", "file", "secret_key")
        for info in card.objects(kind)
    )
    assert len(full) > 255  # the generic list does not fit one response
    tx = bench(card)
    first, second = tx("80CB0100"), tx("80CB0101")
    assert first.endswith("6300") and second.endswith("9000")
    assert bytes.fromhex(first[:-4] + second[:-4]) == full and len(first) == 2 * 255 + 4


@pytest.mark.parametrize("quirk, tlv", [(False, "920104"), (True, "920204")])
def test_switch_quirk_92_02_04(quirk, tlv):
    tx = bench(card_with(quirk_92_02_04=quirk))
    assert tx("80CBC10003840101") == "6128"
    record = tx("00C0000028")
    assert tlv + "91020007" in record and record.endswith("9000")
    assert object_list(tx).hex().upper().count(tlv) == 5  # every key record of the object list


@pytest.mark.parametrize("tags, expected", [("object", ("61", "6F")), ("applet", ("90", "93"))])
def test_switch_applet_info_tags(tags, expected):
    info = bytes.fromhex(bench(card_with(applet_info_tags=tags))("80CB000044")[:-4])
    assert len(info) == 0x44
    assert [info[49], info[59]] == [int(t, 16) for t in expected]  # after 10, 11, B1-B4 / after 91, 92


@pytest.mark.parametrize("wrapped", [False, True])
def test_switch_single_object_info_wrapped(wrapped):
    tx = bench(card_with(single_object_info_wrapped=wrapped))
    n = tx("80CBC30003830102")
    assert n.startswith("61")
    data = tx("00C00000" + n[2:])
    assert data.startswith("C3" if wrapped else "730B")


def test_switch_read_file_eof():
    strict, padded = card_with(read_file_eof="strict"), card_with(read_file_eof="zero_pad")
    for card in (strict, padded):
        card.set_file(b"\x02", b"\xaa" * 300)
    tx = bench(strict)
    assert tx("80B0012C03830102") == "6B00"
    assert tx("80B0010003830102") == "612C"  # the 44 bytes left
    tx = bench(padded)
    assert tx("80B0010003830102") == "6100"  # 256 bytes: the rest and zeros
    assert tx("00C0000000") == "AA" * 44 + "00" * 212 + "9000"
    assert (
        tx("80B0012C0383010210") == "6110" and tx("00C0000010") == "00" * 16 + "9000"
    )  # past the end: zeros


def test_switch_t0():
    assert bench(card_with(t0=True))("80CBC30003830102").startswith("61")
    direct = bench(card_with(t0=False))("80CBC30003830102")
    assert direct.startswith("730B") and direct.endswith("9000")
    assert bench(card_with(t0=False))("8084000020")[-4:] == "9000"


def test_switch_lenient_implicit_channel():
    """wolfSSL sends SELECT with CLA 01 without opening channel 1."""
    for lenient, answer in ((False, "6881"), (True, "9000")):
        card = card_with(lenient_implicit_channel=lenient)
        tx = bench(card)
        assert tx("01A4040007" + card.aid.hex()) == answer
    assert tx("02A4040007" + card.aid.hex()) == "6881"  # only channel 1 opens by itself
    assert tx("8184000008")[-4:] == "9000"


def test_switch_max_sessions():
    one, two = bench(card_with(max_sessions=1)), bench(card_with(max_sessions=2))
    for tx in (one, two):
        assert tx("802A00010D 840101 A10103 91020001 920104") == "9000"
    assert one("802C000203 850105") == "6A86" and two("8024000203 850105") == "9000"
    assert one("80CB000044").endswith("B701019000") and two("80CB000044").endswith("B701029000")


def test_switch_vendor_version():
    assert bench(card_with(vendor_version="0104"))("80700000") == "01049000"
    assert bench(card_with(vendor_version=None))("80700000") == "6D00"


# -- timing -----------------------------------------------------------------------


def test_timing_model():
    from safebench_simulator.timing import TimingModel

    timing = TimingModel.from_profile(profiles.load("generic"))
    keygen = bytes.fromhex("80B900000484020002")
    response = bytes.fromhex("6151")
    transfer = (
        (len('AT+CSIM=18,"') + 18 + 2 + len('\r\n+CSIM: 4,"') + 4 + len('"\r\n\r\nOK\r\n')) * 10 / 115.2
    )
    assert timing.card_ms(keygen) == 1500
    assert timing.modeled_time_ms(keygen, response) == pytest.approx(1500 + transfer)
    assert timing.card_ms(bytes.fromhex("812B000104 9B020102")) == 5  # an intermediate block only hashes
    assert timing.card_ms(bytes.fromhex("812B800104 9B020102")) == 300
    assert timing.card_ms(bytes.fromhex("8084000010")) == 5
    assert timing.card_ms(b"") == 5


def test_realtime_only_when_asked(monkeypatch):
    slept = []
    monkeypatch.setattr(uicc_module.time, "sleep", slept.append)
    monkeypatch.delenv(profiles.REALTIME_ENV, raising=False)
    card = Card.new()
    keygen = bytes.fromhex("80B9000003840101")
    for realtime in (None, False):
        uicc = Uicc(card, {card.aid: IoTSafeApplet(card)}, realtime=realtime)
        uicc.transmit(bytes.fromhex("00A4040007") + card.aid)
        uicc.transmit(keygen)
    assert slept == []
    monkeypatch.setenv(profiles.REALTIME_ENV, "1")
    uicc = Uicc(card, {card.aid: IoTSafeApplet(card)})
    uicc.transmit(bytes.fromhex("00A4040007") + card.aid)
    response = uicc.transmit(keygen)
    assert slept == [0.005, 1.5]
    assert uicc.modeled_time_ms(keygen, response) > 1500
    assert Uicc(card, {}, realtime=True).realtime and not Uicc(card, {}, realtime=False).realtime
