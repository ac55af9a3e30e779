# Finding the roles on the card (simroles.find, role_discovery): the Thales MVP card's real object list, the
# generic and ZARIOT layouts, sim.json overrides, a card without an object list.
import tvectors
from apdu import CardError
from iotsafe import parse_records
from simroles import GENERIC, NoRoleError, find

_FIXTURES = {r_name: r[r_name] for r in tvectors.load("x509_fixtures.txt") for r_name in r}
DEVICE_CERT, CA_CERT = _FIXTURES["server"], _FIXTURES["root"]  # any certificate and another one
_SPKI = bytes.fromhex("2a8648ce3d030107034200")  # the P-256 OID, then the key's BIT STRING header
DEVICE_POINT = DEVICE_CERT[DEVICE_CERT.index(_SPKI) + len(_SPKI):][:65]
NO_SIM_JSON = "/no/such/sim.json"


def _mvp_object_list():
    """The object list the Thales MVP card answered (docs/iotsafe.md §9.1, trace 2), without its 9000."""
    with open(tvectors._dir() + "thales_mvp_trace2.txt") as f:
        lines = [line.strip() for line in f]
    return bytes.fromhex(lines[lines.index("C: 80CB0100") + 1][3:-4])


MVP_OBJECTS = _mvp_object_list()


class FakeCard:
    """objects / read_public_key / read_file as iotsafe.IoTSafe answers them; counts what it is asked."""

    def __init__(self, objects, points=None, files=None, list_sw=None):
        self.list, self.points, self.files, self.list_sw = objects, points or {}, files or {}, list_sw
        self.asked = []

    def objects(self):
        self.asked.append("objects")
        if self.list_sw:
            raise CardError(self.list_sw, "GET DATA object list")
        return parse_records(self.list)

    def read_public_key(self, key):
        self.asked.append(("CD", key))
        if key not in self.points:
            raise CardError(0x6982, "Read Public Key")  # the Thales MVP card's key: access 02, no read
        return self.points[key]

    def read_file(self, file):
        self.asked.append(("B0", file))
        return self.files[file]


def _tlv(tag, value):
    return bytes((tag, len(value))) + value


def _key(kind_tag, label, key_id, key_type, functions, access=b"\x02", state=b"\x01"):
    """A key record as the generic profile lists it (label, ID, access, state, type, usage, functions)."""
    return (_tlv(kind_tag - 0x10, label) + _tlv(kind_tag, key_id) + _tlv(0x60, access) + _tlv(0x4A, state)
            + _tlv(0x4B, key_type) + _tlv(0x4E, b"\x03") + _tlv(0x61, functions) + _tlv(0x92, b"\x04")
            + _tlv(0x91, b"\x00\x07") + _tlv(0x6F, b"\x01"))


def _file(label, file_id, usage=b"\x02", size=b"\x01\xf0"):
    return _tlv(0x73, label) + _tlv(0x83, file_id) + _tlv(0x60, b"\x01") + _tlv(0x4A, b"\x01") + _tlv(0x21, usage) \
        + _tlv(0x20, size)


def _generic_list(ids=(b"\x01", b"\x01", b"\x04", b"\x04", b"\x05", b"\x02", b"\x03"), pair_label=b"client-key"):
    priv, pub, eph_priv, eph_pub, peer, file_a, file_b = ids
    return (_key(0x84, b"client-key", priv, b"\x13", b"\x03") + _key(0x84, b"ephemeral", eph_priv, b"\x14", b"\x06")
            + _key(0x85, pair_label, pub, b"\x13", b"\x03", b"\x01")
            + _key(0x85, b"ephemeral", eph_pub, b"\x14", b"\x06", b"\x01", b"\x00")
            + _key(0x85, b"peer", peer, b"\x13", b"\x05", b"\x03", b"\x00")
            + _file(b"client-cert", file_a) + _file(b"ca-cert", file_b))


def _found(card, path=NO_SIM_JSON, files=None):
    roles = find(card, {} if files is None else files, path)
    return {name: roles.get(name) for name in GENERIC}


def test_generic_layout():
    card = FakeCard(_generic_list(), {b"\x01": DEVICE_POINT}, {b"\x02": DEVICE_CERT, b"\x03": CA_CERT})
    files = {}
    assert _found(card, files=files) == GENERIC
    assert files == {b"\x02": DEVICE_CERT}  # the certificate read on the way is the session's now


def test_the_certificate_is_the_one_holding_the_key():
    # the CA certificate listed first: the client certificate is still the file that holds the key pair's point
    card = FakeCard(_generic_list(), {b"\x01": DEVICE_POINT}, {b"\x02": CA_CERT, b"\x03": DEVICE_CERT})
    roles = _found(card)
    assert roles["client_cert"] == b"\x03" and roles["ca_cert"] == b"\x02"


def test_zariot_layout_pairs_keys_by_label():
    ids = (b"006", b"007", b"004", b"005", b"008", b"002", b"003")
    card = FakeCard(_generic_list(ids, b"client-key"), {b"007": DEVICE_POINT}, {b"002": DEVICE_CERT, b"003": CA_CERT})
    assert _found(card) == {"signing_key": b"006", "signing_public_key": b"007", "client_cert": b"002",
                            "ca_cert": b"003", "ephemeral_key": b"004", "peer_key": b"008"}


def test_thales_mvp_object_list():
    # the card's own list: key 0002 (its public key not readable: access 02), file 0001, public key 0003 empty
    card = FakeCard(MVP_OBJECTS, files={b"\x00\x01": DEVICE_CERT})
    assert _found(card) == {"signing_key": b"\x00\x02", "signing_public_key": b"\x00\x02",
                            "client_cert": b"\x00\x01", "ca_cert": None, "ephemeral_key": None,
                            "peer_key": b"\x00\x03"}


def test_no_certificate_holds_the_key():
    card = FakeCard(_generic_list(), {b"\x01": DEVICE_POINT}, {b"\x02": CA_CERT, b"\x03": CA_CERT})
    roles = _found(card)
    assert roles["signing_key"] == b"\x01" and roles["client_cert"] is None  # not certified (yet)


def test_a_role_the_card_lacks_is_a_typed_error():
    roles = find(FakeCard(MVP_OBJECTS, files={b"\x00\x01": DEVICE_CERT}), {}, NO_SIM_JSON)
    try:
        roles["ephemeral_key"]
    except NoRoleError as e:
        assert e.data == {"role": "ephemeral_key"} and "ephemeral_key" in str(e)
        from rpc_codes import E_NO_ROLE

        assert e.code == E_NO_ROLE
    else:
        raise AssertionError("no NoRoleError")


def _sim_json(text):
    path = "/tmp/mpy_test_role_discovery_sim.json"
    with open(path, "w") as f:
        f.write(text)
    return path


def test_sim_json_naming_every_role_asks_the_card_nothing():
    card = FakeCard(_generic_list())
    path = _sim_json('{"signing_key": "0002", "signing_public_key": "0002", "client_cert": "0001", "ca_cert": "",'
                     ' "ephemeral_key": "", "peer_key": "0003"}')
    roles = find(card, {}, path)
    assert card.asked == [] and roles.get("signing_key") == b"\x00\x02" and roles.get("ca_cert") is None
    assert len(roles.declared) == 6


def test_sim_json_overrides_and_the_rest_is_found_around_it():
    # sim.json names the signing key: the certificate is the one holding that key's point
    lst = _generic_list() + _key(0x84, b"other", b"\x09", b"\x13", b"\x03") + _key(0x85, b"other", b"\x09", b"\x13",
                                                                                    b"\x03", b"\x01")
    card = FakeCard(lst, {b"\x09": DEVICE_POINT, b"\x01": b"\x04" + bytes(64)}, {b"\x02": CA_CERT, b"\x03": DEVICE_CERT})
    roles = find(card, {}, _sim_json('{"signing_key": "09"}'))
    assert roles.get("signing_key") == b"\x09" and roles.get("signing_public_key") == b"\x09"
    assert roles.get("client_cert") == b"\x03" and roles.declared == ("signing_key",)


def test_card_without_an_object_list_is_taken_for_the_generic_layout():
    assert _found(FakeCard(b"", list_sw=0x6D00)) == GENERIC


def test_lost_channel_is_not_swallowed():
    def channel_lost(key):
        raise CardError(0x6881, "Read Public Key")

    card = FakeCard(_generic_list(), {}, {})
    card.read_public_key = channel_lost
    try:
        find(card, {}, NO_SIM_JSON)
    except CardError as e:
        assert e.sw == 0x6881  # the session reopens the channel and asks again
    else:
        raise AssertionError("6881 swallowed")


def test_discovery_code_is_let_go():
    import sys

    find(FakeCard(_generic_list(), {b"\x01": DEVICE_POINT}, {b"\x02": DEVICE_CERT}), {}, NO_SIM_JSON)
    assert "role_discovery" not in sys.modules
