# The `binding.status` and `bind` methods of the command protocol (docs/protocol.md): the board's binding to its
# SIM (binding.py), read and made. Apart from binding.py so that the reading path loads only the check.
import hashlib
import json
import os

import binding
from binding import BindingError, SimReplaced, record_text
from jsonrpc import RpcError, hex_param, hex_text
from rpc_codes import INVALID_PARAMS

AUTHORIZATION_CONTEXT = "safebench bind/1"  # what the operator signs to move a board to another SIM


def authorization_text(board, iccid, kid, generation):
    """The bytes the operator signs to bind `board` to the SIM (iccid, kid) as the record's `generation`."""
    return "|".join((AUTHORIZATION_CONTEXT, board, iccid, kid, str(generation))).encode()


def status():
    """`binding.status`: the board, the SIM in it and the record, and which state that makes: unbound, bound,
    sim-replaced, untrusted (a record this SIM did not sign, or unreadable), no-sim."""
    from atchannel import CMEError
    from service import board_id
    from sim_session import session

    s = session()
    res = {"board": board_id(), "sim": None, "bound": None}
    try:
        rec = binding.load()
    except BindingError as e:
        res.update(state="untrusted", reason=str(e))
        return res
    if rec is not None:
        res["bound"] = {n: rec[n] for n in ("iccid", "kid", "board", "owner", "generation")}
    try:
        iccid, kid = s.identity()
        res["sim"] = {"iccid": iccid, "kid": hex_text(kid)}
        binding.check(s)
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
    from service import board_id
    from sim_session import session

    s = session()
    rec = binding.load()  # an unreadable one names no operator who could authorise a new record: BindingError
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
        if not binding.verified_by_sim(s, "peer_key", text, sig, hex_param(owner_hex, "owner", 65)):
            raise BindingError("the authorization was not signed by this board's operator key: not bound again")
    new = {"board": here, "iccid": iccid, "kid": kid, "owner": owner_hex, "generation": generation}
    key = s.roles["signing_key"]
    digest = hashlib.sha256(record_text(new)).digest()
    new["sig"] = hex_text(s.applet(lambda c: c.sign_hash(key, digest)))
    tmp = binding.FILE + ".tmp"
    with open(tmp, "w") as f:  # written aside and renamed: a reset mid-write leaves the old record or the new
        f.write(json.dumps(new))
    os.rename(tmp, binding.FILE)
    binding.loaded(new)
    s.binding_checked = True
    return status()
