# The board's binding to its SIM (docs/binding.md): a record in flash naming the SIM's identity (kid, and the
# ICCID it had), the board and the operator key that may move it, signed by that SIM. Readings are refused
# under any other SIM ("SIM replaced"), and under a record this SIM did not sign, until the operator binds
# again: `bind` with an authorization signed by the recorded operator key. The first binding (a board with no
# record, at provisioning) names the operator key. Both signatures are checked by the SIM itself (Verify
# Signature): no curve arithmetic on the reading path.
#
# The kid, not the ICCID, is what binds: an eSIM profile switch changes the ICCID and leaves the applet and
# its keys, so the board keeps signing. A record that is not there binds nothing: this check makes a swapped
# SIM visible on the board; someone who rewrites the board's flash is stopped by the host's check.
import hashlib
import json
import os

from jsonrpc import RpcError, hex_param, hex_text
from rpc_codes import E_BINDING, E_SIM_REPLACED, INVALID_PARAMS

FILE = "binding.json"
RECORD_CONTEXT = "safebench binding/1"  # what the SIM signs; sim.sign prefixes its own context, never this
AUTHORIZATION_CONTEXT = "safebench bind/1"  # what the operator signs to move a board to another SIM

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


def authorization_text(board, iccid, kid, generation):
    """The bytes the operator signs to bind `board` to the SIM (iccid, kid) as the record's `generation`."""
    return "|".join((AUTHORIZATION_CONTEXT, board, iccid, kid, str(generation))).encode()


def _load():
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


def _verified_by_sim(s, role, text, signature, point=None):
    """Does `signature` (r||s) over SHA-256(text) verify on the SIM, with its key of `role` (after putting
    `point` there, for a key from outside)?"""
    key = s.roles[role]
    digest = hashlib.sha256(text).digest()

    def check(card):
        if point is not None:
            card.put_public_key(key, point)
        return card.verify_hash(key, digest, signature)

    return s.applet(check)


def check(s):
    """Before a reading: raise SimReplaced unless the SIM in the board is the bound one, BindingError unless it
    signed the record. The record is checked once per SIM session (the SIM may be another after that)."""
    rec = _load()
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
    if sig is None or not _verified_by_sim(s, "signing_public_key", record_text(rec), sig):
        raise BindingError("the binding record in flash was not signed by this SIM: the SIM was replaced by one with"
                           " a copy of its certificate, or the record was changed; `safebench bind` binds it again")
    s.binding_checked = True


def status():
    """`binding.status`: the board, the SIM in it and the record, and which state that makes: unbound, bound,
    sim-replaced, untrusted (a record this SIM did not sign, or unreadable), no-sim."""
    from atchannel import CMEError
    from service import board_id
    from sim_session import session

    s = session()
    res = {"board": board_id(), "sim": None, "bound": None}
    try:
        rec = _load()
    except BindingError as e:
        res.update(state="untrusted", reason=str(e))
        return res
    if rec is not None:
        res["bound"] = {n: rec[n] for n in ("iccid", "kid", "board", "owner", "generation")}
    try:
        iccid, kid = s.identity()
        res["sim"] = {"iccid": iccid, "kid": hex_text(kid)}
        check(s)
    except CMEError as e:
        if e.cme != 10:
            raise
        res["state"] = "no-sim"  # +CME ERROR: 10, SIM not inserted
        return res
    except SimReplaced as e:
        res.update(state="sim-replaced", reason=str(e))
        return res
    except BindingError as e:
        res.update(state="untrusted", reason=str(e))
        return res
    res["state"] = "bound" if rec is not None else "unbound"
    return res


def bind(owner=None, authorization=None):
    """`bind`: bind this board to the SIM in it, signed by that SIM. The first binding names the operator key
    (`owner`, an uncompressed P-256 point, hex); each later one needs `authorization`: the operator's signature
    (r||s, hex) over authorization_text for the next generation, checked by the SIM against the recorded key."""
    global _record
    from service import board_id
    from sim_session import session

    s = session()
    rec = _load()  # an unreadable one names no operator who could authorise a new record: BindingError
    iccid, kid = s.identity()
    kid = hex_text(kid)
    here = board_id()
    if rec is None:
        if owner is None or authorization is not None:
            raise RpcError(INVALID_PARAMS, "this board is not bound yet: give the operator key (owner), not an"
                           " authorization")
        point = hex_param(owner, "owner", 65)
        if point[0] != 4:
            raise RpcError(INVALID_PARAMS, "owner must be an uncompressed P-256 point (04 X Y)")
        generation, owner_hex = 1, hex_text(point)
    else:
        if authorization is None or owner is not None:
            raise BindingError("this board is bound (to SIM %s): binding it again needs the operator's authorization"
                               % rec["iccid"])
        generation, owner_hex = rec["generation"] + 1, rec["owner"]
        sig = hex_param(authorization, "authorization", 64)
        text = authorization_text(here, iccid, kid, generation)
        if not _verified_by_sim(s, "peer_key", text, sig, hex_param(owner_hex, "owner", 65)):
            raise BindingError("the authorization was not signed by this board's operator key: not bound again")
    new = {"board": here, "iccid": iccid, "kid": kid, "owner": owner_hex, "generation": generation}
    key = s.roles["signing_key"]
    digest = hashlib.sha256(record_text(new)).digest()
    new["sig"] = hex_text(s.applet(lambda c: c.sign_hash(key, digest)))
    tmp = FILE + ".tmp"
    with open(tmp, "w") as f:  # written aside and renamed: a reset mid-write leaves the old record or the new
        f.write(json.dumps(new))
    os.rename(tmp, FILE)
    _record = new
    s.binding_checked = True
    return status()
