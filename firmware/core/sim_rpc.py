# The `sim.*` methods of the command protocol (docs/protocol.md): the SIM's applet, objects, files,
# signatures, random numbers and raw APDUs, through the board's SIM session.
from apdu import CardError
from jsonrpc import RpcError, hex_param, hex_text
from rpc_codes import INVALID_PARAMS
from sim_session import session
from simroles import NAMES, OPTIONAL, NoRoleError

# What sim.sign signs before the message. A reading's COSE Sig_structure starts 84 6A "Signature1", a TLS 1.3
# CertificateVerify 64 spaces: no message behind this prefix is either (docs/protocol.md, sim.sign).
CONTEXT = b"safebench sim.sign\x00"
_SIGNATURE_INS = (0x2A, 0x2B)  # Compute Signature Init / Update
_NO_KEY_PAIR = (0x6A82, 0x6985)  # no such private key; no public half, or it cannot generate


def _name(ref):
    """How a reference is shown back: its hex ID, or its label (None: no object)."""
    return ref if ref is None or isinstance(ref, str) else hex_text(ref)


def _ref(value, name, role=None):
    """An object reference from JSON: {"label": "..."} or a hex ID string; None: the SIM's `role`."""
    if value is None and role:
        ref = session().roles.get(role)
        if ref is None:
            raise NoRoleError(role, ": name the %s" % name)
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
    if s.modem.warnings:
        res["modem_warnings"] = s.modem.warnings  # set-up commands the modem refused (modem.status)
    return res


def sim_roles():
    """Which container does what on this SIM (found on the card, or as sim.json says), and what sim.json said."""
    roles = session().roles
    return {"roles": {name: _name(roles.get(name)) for name in NAMES + OPTIONAL}, "declared": list(roles.declared)}


def sim_read_file(file=None):
    f = _ref(file, "file", "client_cert")
    return {"data": hex_text(session().applet(lambda c: c.read_file(f)))}


def sim_sign(message=None, key=None, on_card_hash=False):
    """Sign CONTEXT + a message with a SIM key (the reading key unless `key` says), hashed here or on the card.

    Never a bare message or a digest: then no signature made here could be taken for a reading's or a TLS
    handshake's, which the firmware composes itself with the same key."""
    if message is None:
        raise RpcError(INVALID_PARAMS, "give the message (hex): sim.sign signs messages, not digests")
    k = _ref(key, "key", "signing_key")
    signed = CONTEXT + hex_param(message, "message")
    if on_card_hash:
        sig = session().applet(lambda c: c.sign_message(k, signed))
        return {"alg": "ES256", "key": _name(k), "signature": hex_text(sig)}
    import hashlib

    digest = hashlib.sha256(signed).digest()
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


def sim_keygen(key=None):
    """A fresh key pair in a private key container (default: the SIM's ephemeral key); returns its public key."""
    k = _ref(key, "key", "ephemeral_key")
    s = session()
    s.ephemeral_point = None  # a key made ahead for TLS may be the one replaced here
    try:
        point = s.applet(lambda c: c.generate_key_pair(k))
    except CardError as e:
        if e.sw not in _NO_KEY_PAIR:
            raise
        raise CardError(e.sw, "%s is not a key pair of this SIM: Generate Key Pair needs a private key container with a"
                        " public key of the same label, both able to generate" % _name(k)) from None
    return {"key": _name(k), "public_key": hex_text(point)}


def sim_read_pubkey(key=None):
    k = _ref(key, "key", "signing_public_key")
    return {"public_key": hex_text(session().applet(lambda c: c.read_public_key(k)))}


def sim_apdu(apdu):
    """Raw APDU on the applet's channel (lab use); the channel bits of CLA are set here."""
    raw = hex_param(apdu, "apdu")
    if not 4 <= len(raw) <= 261:
        raise RpcError(INVALID_PARAMS, "apdu must be 4..261 bytes")
    if raw[1] in _SIGNATURE_INS:
        raise RpcError(INVALID_PARAMS, "signatures go through sim.sign: a raw one could pass for a reading")

    def send(card):
        ch = card.channel
        data = raw[5:5 + raw[4]] if len(raw) > 5 else None
        le = raw[-1] if len(raw) == 5 or (len(raw) > 5 and len(raw) == 6 + raw[4]) else None
        return ch.command(raw[1], raw[2], raw[3], data, le)

    data, sw = session().applet(send)
    return {"data": hex_text(data), "sw": "%04X" % sw}
