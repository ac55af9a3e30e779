# COSE_Sign1 (RFC 9052) with ES256, the signature made by a signer such as the SIM.
#
# The payload and protected header are serialised once by the caller; the signature covers exactly
# those bytes (Sig_structure), and the message carries exactly those bytes.
import hashlib

from cbor import head, item, pairs

TAG_SIGN1 = 18
ES256 = -7
_HDR_ALG, _HDR_KID = 1, 4
PROTECTED_ES256 = bytes(pairs(bytearray(), ((_HDR_ALG, ES256),)))  # A1 01 26


def sign1(payload, kid, sign_digest, protected=PROTECTED_ES256):
    """A tagged COSE_Sign1 message; `sign_digest(sha256)` returns a raw r||s signature."""
    to_sign = bytearray()
    item(to_sign, ["Signature1", protected, b"", payload])
    signature = sign_digest(hashlib.sha256(to_sign).digest())
    out = bytearray()
    head(out, 6, TAG_SIGN1)
    head(out, 4, 4)
    item(out, protected)
    pairs(out, ((_HDR_KID, kid),))
    item(out, payload)
    item(out, signature)
    return bytes(out)
