# Which container of the SIM does what. SIMs differ (docs/iotsafe.md §7): the generic layout
# is 01 signing key pair, 02 client certificate, 03 CA certificate, 04 ephemeral ECDH pair, 05 peer
# public key; a board whose SIM differs carries `sim.json` on its flash, e.g. {"signing_key": "0002"},
# written by `safebench deploy` (from the card image, or `--sim-roles FILE`).
from binascii import unhexlify

GENERIC = {"signing_key": b"\x01", "client_cert": b"\x02", "ca_cert": b"\x03", "ephemeral_key": b"\x04",
           "peer_key": b"\x05"}


def load(path="sim.json"):
    """The roles of this board's SIM: the generic layout, overridden by `path` where present."""
    roles = dict(GENERIC)
    try:
        with open(path) as f:
            import json

            given = json.load(f)
    except OSError:
        return roles
    for name, hex_id in given.items():
        roles[name] = unhexlify(hex_id) if hex_id else None
    return roles
