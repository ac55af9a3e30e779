# The operational identity a factory SIM was enrolled with (docs/enrolment.md): the card has no command to
# write a file, so the certificate the EST server issued and its CA chain are kept in the board's flash, with
# the containers of the key the SIM made and the EST server that re-enrols it (address, trust anchor). The file
# is signed by that key and checked by the SIM itself (Verify Signature) once per SIM session: a flipped byte,
# a certificate swapped in or another SIM's file is reported (StoreError) and never used. Read by the SIM
# session (sim_session.py), written by enrolment_rpc.
import hashlib
import os

from rpc_codes import E_STORE

FILE = "identity.bin"  # as sim_session.ENROLLED_FILE, which looks for it before importing this module

CONTEXT = b"safebench identity/1"  # what the SIM signs before the file's fields
_SIG = 64  # r||s


class StoreError(Exception):
    """The enrolled identity in flash cannot be trusted: changed, damaged or not this SIM's."""

    code = E_STORE


def _pack(fields):
    out = bytearray()
    for f in fields:
        out += len(f).to_bytes(2, "big") + f
    return bytes(out)


def _unpack(data):
    fields, i = [], 0
    while i < len(data):
        n = int.from_bytes(data[i:i + 2], "big")
        if i + 2 + n > len(data):
            raise ValueError
        fields.append(bytes(data[i + 2:i + 2 + n]))
        i += 2 + n
    return fields


def load(s):
    """{key, public, cert, est ("host:port"), anchor (DER, b"": the card's CA file), chain} of the file, checked
    by the SIM of session `s`; None without a file; StoreError if the SIM does not vouch for it."""
    try:
        with open(FILE, "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        body, sig = data[:-_SIG], data[-_SIG:]
        fields = _unpack(body)
        key, public, cert, est, anchor = fields[:5]
        chain = fields[5:]
    except (ValueError, IndexError):
        raise StoreError("the enrolled identity in flash (%s) is damaged: not used; `safebench enroll` enrols the"
                         " board again" % FILE) from None
    digest = hashlib.sha256(CONTEXT + body).digest()
    if len(sig) != _SIG or not s.applet(lambda c: c.verify_hash(public, digest, sig)):
        raise StoreError("the enrolled identity in flash (%s) does not check with the SIM: changed, or another "
                         "SIM's; not used. `safebench enroll` enrols the board again" % FILE)
    return {"key": key, "public": public, "cert": cert, "est": est.decode(), "anchor": anchor, "chain": chain}


def apply(s, roles):
    """`roles.enrolled`: the identity of `load`, its key made the signing key of `roles` (the card's own); when
    the SIM does not vouch for the file, `roles` sign nothing (roles.unusable)."""
    try:
        e = load(s)
    except StoreError as err:
        roles.unusable = err
        return
    if e:
        roles.ids["signing_key"], roles.ids["signing_public_key"] = e["key"], e["public"]
        roles.enrolled = e


def save(s, key, public, cert, est, anchor, chain):
    """Write the identity (the SIM signs it with `key`), aside and renamed: a reset leaves the old or the new."""
    body = _pack([key, public, cert, est.encode(), anchor] + list(chain))
    digest = hashlib.sha256(CONTEXT + body).digest()
    sig = s.applet(lambda c: c.sign_hash(key, digest))
    tmp = FILE + ".tmp"
    with open(tmp, "wb") as f:
        f.write(body)
        f.write(sig)
    os.rename(tmp, FILE)
