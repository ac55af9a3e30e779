# The board's binding to its SIM (docs/binding.md), checked here (binding_rpc.py reads and makes it): a record
# in flash naming the SIM's identity (kid, and the ICCID it had), the board and the operator key that may move
# it, signed by that SIM. Readings are refused under any other SIM ("SIM replaced"), and under a record this
# SIM did not sign, until the operator binds again: `bind` with an authorization signed by the recorded
# operator key. The first binding (a board with no record, at provisioning) names the operator key. Both
# signatures are checked by the SIM itself (Verify Signature): no curve arithmetic on the reading path.
#
# The kid, not the ICCID, is what binds: an eSIM profile switch changes the ICCID and leaves the applet and
# its keys, so the board keeps signing. A record that is not there binds nothing: this check makes a swapped
# SIM visible on the board; someone who rewrites the board's flash is stopped by the host's check.
import hashlib
import json

from jsonrpc import RpcError, hex_param, hex_text
from rpc_codes import E_BINDING, E_SIM_REPLACED

FILE = "binding.json"
RECORD_CONTEXT = "safebench binding/1"  # what the SIM signs; sim.sign prefixes its own context, never this

_record = False  # not read yet; None: no record


class SimReplaced(Exception):
    """The SIM in the board is not the one it is bound to."""

    code = E_SIM_REPLACED

    def __init__(self, record, iccid, kid):
        self.data = {"bound": {"iccid": record["iccid"], "kid": record["kid"]}, "present": {"iccid": iccid, "kid": kid}}
        super().__init__("SIM replaced: this board is bound to SIM %s (kid %s...), and SIM %s (kid %s...) is in it;"
                         " `safebench bind` binds it again" % (record["iccid"], record["kid"][:16], iccid, kid[:16]))


class BindingError(Exception):
    """The binding record cannot be trusted, or a binding was refused."""

    code = E_BINDING


def record_text(record):
    """The bytes the SIM signs for a record."""
    return "|".join((RECORD_CONTEXT, record["board"], record["iccid"], record["kid"], record["owner"],
                     str(record["generation"]))).encode()


def load():
    """The record in flash: None if there is none; BindingError if it is unreadable."""
    global _record
    if _record is False:
        try:
            with open(FILE) as f:
                text = f.read()
        except OSError:
            _record = None
            return None
        try:
            rec = json.loads(text)
            for name in ("board", "iccid", "kid", "owner", "sig"):
                if not isinstance(rec.get(name), str):
                    raise ValueError(name)
            if not isinstance(rec.get("generation"), int):
                raise ValueError("generation")
        except (ValueError, TypeError, AttributeError):
            raise BindingError("the binding record in flash (%s) is unreadable: remove it (mpremote rm :%s) and bind"
                               " again" % (FILE, FILE)) from None
        _record = rec
    return _record


def verified_by_sim(s, role, text, signature, point=None):
    """Does `signature` (r||s) over SHA-256(text) verify on the SIM, with its key of `role` (after putting
    `point` there, for a key from outside)?"""
    key = s.roles[role]
    digest = hashlib.sha256(text).digest()

    def check(card):
        if point is not None:
            card.put_public_key(key, point)
        return card.verify_hash(key, digest, signature)

    return s.applet(check)


def loaded(record):
    """`record` is the one in flash now (binding_rpc wrote it)."""
    global _record
    _record = record


def check(s):
    """Before a reading: raise SimReplaced unless the SIM in the board is the bound one, BindingError unless it
    signed the record. The record is checked once per SIM session (the SIM may be another after that)."""
    rec = load()
    if rec is None:
        return
    iccid, kid = s.identity()
    kid = hex_text(kid)
    if kid != rec["kid"]:
        raise SimReplaced(rec, iccid, kid)
    if s.binding_checked:
        return
    try:
        sig = hex_param(rec["sig"], "sig", 64)
    except RpcError:
        sig = None
    if sig is None or not verified_by_sim(s, "signing_public_key", record_text(rec), sig):
        raise BindingError("the binding record in flash was not signed by this SIM: the SIM was replaced by one with"
                           " a copy of its certificate, or the record was changed; `safebench bind` binds it again")
    s.binding_checked = True
