# The board's state in flash sealed with a key of its SIM's (docs/enrolment.md, data at rest): the sequence
# counter's slots and the outbox's readings carry an HMAC-SHA256 tag whose key the SIM derives from its secret
# (Compute PRF) once per SIM session. The secret never leaves the card, the key never reaches flash: a byte
# changed in flash, or another SIM's state, fails its tag and is reported, never used. A card without a secret
# the PRF takes (the Thales MVP profile's is empty) leaves the state with its CRCs alone: `key` is None.
from apdu import CardError
from iotsafe import SECRET_KEY, ref, tlv
from micropython import const

_INS_PRF = const(0x48)  # Compute PRF: here, not in iotsafe.py, which is on every heap; only the seal asks it
_CARD_SECRET = const(1)  # P1: the secret is in one of the card's secret key containers
_SLOW_MS = const(30000)

TAG = 16  # bytes of the HMAC kept
LABEL = b"safebench flash seal/1"


def key(s):
    """The SIM session `s`'s seal key (32 bytes), derived on the card the first time; None without a secret."""
    roles = s.roles  # the key is the SIM session's, kept with its roles
    if roles.seal_key is False:
        secret = roles.get("secret")
        try:
            roles.seal_key = None if secret is None else s.applet(lambda c: _prf(c, secret))
        except CardError:  # a secret the card will not use for the PRF: nothing to seal with
            roles.seal_key = None
    return roles.seal_key


def _prf(card, secret):
    """The TLS 1.2 PRF (P_SHA256, an HMAC keyed with the card's secret `secret`) over LABEL: 32 bytes."""
    data = ref(SECRET_KEY, secret) + tlv(0xD2, LABEL) + tlv(0xD3, b"\x20")
    return card.channel.send(_INS_PRF, _CARD_SECRET, 0, data, 0, "Compute PRF", _SLOW_MS)


def tag(seal_key, *parts):
    """The tag of `parts` (bytes-like) under `seal_key`."""
    from hmac_sha256 import hmac_sha256

    return hmac_sha256(seal_key, *parts)[:TAG]
