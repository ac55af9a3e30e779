# The board's binding record (core/binding.py): signed by its SIM at the first binding, refusing readings under
# another SIM or a changed record, moved only by the operator's authorization for the next generation. The card
# is a fake with real ECDSA (p256, softkeys); the simulated bench runs the real applet (hil_tests).
import hashlib
import os

import binding
import binding_rpc
import p256
import service
import sim_session
from expect import raises
from jsonrpc import RpcError
from simroles import Roles
from softkeys import sign_digest

BOARD = "E6614103E7452D2F"
OPERATOR = 0x1D1CE5  # the operator's private scalar
OTHER_OPERATOR = 0xBAD


class FakeCard:
    """Signs with its own key (container 01) and verifies with 01 or the put peer key (05), as the applet."""

    def __init__(self, d):
        self.d, self.points = d, {b"\x01": p256.mul_base(d)}

    def sign_hash(self, key, digest):
        r, s = sign_digest(self.d, digest)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def put_public_key(self, key, point):
        self.points[key] = p256.decode_point(point)

    def verify_hash(self, key, digest, sig):
        x, y = self.points[key]
        return p256.verify(x, y, digest, int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))


class FakeSession:
    def __init__(self, d, iccid, cert):
        self.card, self.binding_checked = FakeCard(d), False
        self.roles = Roles({"signing_key": b"\x01", "signing_public_key": b"\x01", "peer_key": b"\x05"})
        self._identity = (iccid, hashlib.sha256(cert).digest())

    def identity(self):
        return self._identity

    def applet(self, fn):
        return fn(self.card)


def _insert(d, iccid="8988211000000000001", cert=b"certificate one"):
    sim_session._session = FakeSession(d, iccid, cert)
    binding._record = False  # as after a reset: read from flash again
    return sim_session._session


def _owner(d=OPERATOR):
    return p256.encode_point(*p256.mul_base(d)).hex()


def _authorization(d, iccid, kid, generation):
    r, s = sign_digest(d, hashlib.sha256(binding_rpc.authorization_text(BOARD, iccid, kid, generation)).digest())
    return (r.to_bytes(32, "big") + s.to_bytes(32, "big")).hex()


def _refused(kind, words, fn):
    e = raises(kind, fn)
    assert words in str(e), str(e)


def _fresh():
    binding.FILE = "/tmp/safebench_binding_test.json"
    service.board_id = lambda: BOARD
    for name in (binding.FILE, binding.FILE + ".tmp"):
        try:
            os.remove(name)
        except OSError:
            pass


def test_unbound_board_signs_and_first_binding_names_the_operator():
    _fresh()
    s = _insert(0x51)
    binding.check(s)  # no record: nothing to refuse
    assert binding_rpc.status()["state"] == "unbound"
    _refused(RpcError, "operator key", lambda: binding_rpc.bind())
    res = binding_rpc.bind(owner=_owner())
    assert res["state"] == "bound" and res["bound"]["generation"] == 1 and res["bound"]["board"] == BOARD
    _insert(0x51)
    binding.check(sim_session._session)  # after a reset, the same SIM: its own record verifies
    _fresh()


def test_another_sim_is_refused_until_the_operator_moves_the_board():
    _fresh()
    _insert(0x51)
    binding_rpc.bind(owner=_owner())
    s = _insert(0x52, "8988211000000000002", b"certificate two")
    _refused(binding.SimReplaced, "SIM replaced", lambda: binding.check(s))
    assert binding_rpc.status()["state"] == "sim-replaced"
    kid = binding_rpc.status()["sim"]["kid"]
    # a bound board takes no new operator key; nor the authorization of another operator, nor an old one
    _refused(binding.BindingError, "authorization", lambda: binding_rpc.bind(owner=_owner()))
    for d, generation in ((OTHER_OPERATOR, 2), (OPERATOR, 1)):
        auth = _authorization(d, "8988211000000000002", kid, generation)
        _refused(binding.BindingError, "operator key", lambda a=auth: binding_rpc.bind(authorization=a))
    res = binding_rpc.bind(authorization=_authorization(OPERATOR, "8988211000000000002", kid, 2))
    assert res["state"] == "bound" and res["bound"]["generation"] == 2
    binding.check(s)
    _refused(binding.SimReplaced, "SIM replaced", lambda: binding.check(_insert(0x51)))  # the first one: no more
    _fresh()


def test_a_changed_record_or_a_copied_certificate_is_not_trusted():
    _fresh()
    _insert(0x51)
    binding_rpc.bind(owner=_owner())
    with open(binding.FILE) as f:
        text = f.read()
    with open(binding.FILE, "w") as f:
        f.write(text.replace(BOARD, "E6614103E7452D30"))  # moved to another board's name
    _refused(binding.BindingError, "not signed by this SIM", lambda: binding.check(_insert(0x51)))
    with open(binding.FILE, "w") as f:
        f.write(text)
    # a SIM with a copy of the certificate (the same kid), not its key
    _refused(binding.BindingError, "not signed by this SIM", lambda: binding.check(_insert(0x99)))
    binding.check(_insert(0x51))
    with open(binding.FILE, "w") as f:
        f.write(text[:40])
    s = _insert(0x51)
    _refused(binding.BindingError, "unreadable", lambda: binding.check(s))
    assert binding_rpc.status()["state"] == "untrusted"
    _fresh()
