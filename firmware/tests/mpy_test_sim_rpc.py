# The sim.* handlers' key roles: what sim.sign lets the reading key sign, raw signatures refused, sim.keygen
# without a key pair. The SIM session is a fake: these are the handlers' own decisions.
import hashlib

import sim_rpc
import sim_session
from apdu import CardError
from expect import raises
from jsonrpc import RpcError
from simroles import NoRoleError, Roles

# A reading's COSE Sig_structure: ["Signature1", h'A10126', h'', payload] (RFC 9052 §4.4)
SIG_STRUCTURE = bytes.fromhex("846A5369676E61747572653143A1012640") + b"\x45hello"


class FakeCard:
    def __init__(self, keygen_sw=None):
        self.signed, self.keygen_sw = [], keygen_sw

    def sign_hash(self, key, digest):
        self.signed.append((key, "hash", digest))
        return bytes(64)

    def sign_message(self, key, message):
        self.signed.append((key, "message", message))
        return bytes(64)

    def generate_key_pair(self, key):
        if self.keygen_sw:
            raise CardError(self.keygen_sw, "Generate Key Pair")
        return b"\x04" + bytes(64)


class FakeSession:
    def __init__(self, card, ids):
        self.card, self.roles = card, Roles(ids)

    def applet(self, fn):
        return fn(self.card)


def _session(card=None, **ids):
    card = card or FakeCard()
    sim_session._session = FakeSession(card, dict({"signing_key": b"\x01", "ephemeral_key": b"\x04"}, **ids))
    return card


def test_sign_covers_the_context_and_the_message():
    card = _session()
    res = sim_rpc.sim_sign(message=SIG_STRUCTURE.hex())
    key, mode, digest = card.signed[0]
    assert key == b"\x01" and mode == "hash"
    assert digest == hashlib.sha256(sim_rpc.CONTEXT + SIG_STRUCTURE).digest()
    assert digest != hashlib.sha256(SIG_STRUCTURE).digest()  # what a reading's signature covers
    assert res["hash"] == digest.hex().upper()


def test_sign_on_card_hash_sends_the_context_too():
    card = _session()
    sim_rpc.sim_sign(message="00", on_card_hash=True)
    assert card.signed == [(b"\x01", "message", sim_rpc.CONTEXT + b"\x00")]


def test_context_is_never_the_start_of_a_reading_or_a_tls_signature():
    assert sim_rpc.CONTEXT[:2] != SIG_STRUCTURE[:2] and sim_rpc.CONTEXT[:1] != b" "


def test_sign_takes_no_digest():
    _session()
    raises(TypeError, sim_rpc.sim_sign, hash="00" * 32)  # the server answers "bad params"
    assert "message" in str(raises(RpcError, sim_rpc.sim_sign))


def test_raw_signature_apdus_are_refused():
    card = _session()
    init = "002A00010D840101A1010391020001920104"  # Compute Signature Init, key 01, pad-and-sign
    for apdu in (init, "002B8001229E20" + "00" * 32):
        e = raises(RpcError, sim_rpc.sim_apdu, apdu)
        assert "sim.sign" in str(e)
    assert card.signed == []


def test_keygen_defaults_to_the_ephemeral_key():
    _session()
    assert sim_rpc.sim_keygen()["key"] == "04"


def test_keygen_without_a_key_pair_says_so():
    _session(ephemeral_key=None)
    e = raises(NoRoleError, sim_rpc.sim_keygen)
    assert e.data == {"role": "ephemeral_key"} and "name the key" in str(e)
    _session(FakeCard(keygen_sw=0x6A82))
    e = raises(CardError, sim_rpc.sim_keygen, key="07")
    assert e.sw == 0x6A82 and "07 is not a key pair of this SIM" in str(e)
