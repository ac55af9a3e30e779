# The `sim.*` methods of the command protocol (docs/protocol.md): the SIM's applet, objects, files,
# signatures, random numbers and raw APDUs, through the board's SIM session.
from jsonrpc import RpcError, hex_param, hex_text
from rpc_codes import INVALID_PARAMS
from sim_session import session


def _name(ref):
    """How a reference is shown back: its hex ID, or its label."""
    return ref if isinstance(ref, str) else hex_text(ref)


def _ref(value, name, role=None):
    """An object reference from JSON: {"label": "..."} or a hex ID string; None: the SIM's `role`."""
    if value is None and role:
        roles = session().roles
        ref = roles.get(role) or (roles.get("signing_key") if role == "signing_public_key" else None)
        if ref is None:  # the public half of a key pair shares its ID unless sim.json says otherwise
            raise RpcError(INVALID_PARAMS, "this SIM has no %s: name the %s" % (role, name))
        return ref
    if isinstance(value, dict) and isinstance(value.get("label"), str):
        return value["label"]
    return hex_param(value, name)


def _record(r):
    out = {"kind": r.get("kind"), "id": hex_text(r.get("id", b"")),
           "attributes": {"%02X" % t: hex_text(v) for t, v in r["attributes"].items()}}
    if "label" in r:
        out["label"] = r["label"].decode()
    return out


def sim_info(objects=True):
    s = session()
    res = {"iccid": s.iccid()}

    def read(card):
        res["applet"] = {"%02X" % t: hex_text(v) for t, v in card.applet_info().items()}
        if objects:
            res["objects"] = [_record(r) for r in card.objects()]

    s.applet(read)
    return res


def sim_read_file(file=None):
    f = _ref(file, "file", "client_cert")
    return {"data": hex_text(session().applet(lambda c: c.read_file(f)))}


def sim_sign(message=None, hash=None, key=None, on_card_hash=False):
    """Sign a message (hashed here with SHA-256, or on the card) or a SHA-256 digest with a SIM key."""
    if (message is None) == (hash is None):
        raise RpcError(INVALID_PARAMS, "give exactly one of message or hash")
    k = _ref(key, "key", "signing_key")
    if hash is not None:
        digest = hex_param(hash, "hash", 32)
        sig = session().applet(lambda c: c.sign_hash(k, digest))
        return {"alg": "ES256", "key": _name(k), "hash": hex_text(digest), "signature": hex_text(sig)}
    msg = hex_param(message, "message")
    if on_card_hash:
        sig = session().applet(lambda c: c.sign_message(k, msg))
        return {"alg": "ES256", "key": _name(k), "signature": hex_text(sig)}
    import hashlib

    digest = hashlib.sha256(msg).digest()
    sig = session().applet(lambda c: c.sign_hash(k, digest))
    return {"alg": "ES256", "key": _name(k), "hash": hex_text(digest), "signature": hex_text(sig)}


def sim_verify(hash, signature, key=None):
    """Check an ECDSA signature over a SHA-256 digest with a public key on the SIM."""
    k = _ref(key, "key", "signing_public_key")
    digest, sig = hex_param(hash, "hash", 32), hex_param(signature, "signature", 64)
    return {"valid": session().applet(lambda c: c.verify_hash(k, digest, sig))}


def sim_random(length=16):
    if not isinstance(length, int) or not 1 <= length <= 256:
        raise RpcError(INVALID_PARAMS, "length must be 1..256")
    return {"random": hex_text(session().applet(lambda c: c.random(length)))}


def sim_keygen(key):
    """Refresh the key pair in a private key container; returns the new public key."""
    k = _ref(key, "key")
    return {"public_key": hex_text(session().applet(lambda c: c.generate_key_pair(k)))}


def sim_read_pubkey(key=None):
    k = _ref(key, "key", "signing_public_key")
    return {"public_key": hex_text(session().applet(lambda c: c.read_public_key(k)))}


def sim_apdu(apdu):
    """Raw APDU on the applet's channel (lab use); the channel bits of CLA are set here."""
    raw = hex_param(apdu, "apdu")
    if not 4 <= len(raw) <= 261:
        raise RpcError(INVALID_PARAMS, "apdu must be 4..261 bytes")

    def send(card):
        ch = card.channel
        data = raw[5:5 + raw[4]] if len(raw) > 5 else None
        le = raw[-1] if len(raw) == 5 or (len(raw) > 5 and len(raw) == 6 + raw[4]) else None
        return ch.command(raw[1], raw[2], raw[3], data, le)

    data, sw = session().applet(send)
    return {"data": hex_text(data), "sw": "%04X" % sw}
