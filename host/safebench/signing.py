"""One signature made by a board's SIM, checked on the host against the certificate the SIM holds.

`sim.sign` never signs a bare message: it signs CONTEXT + the message (docs/protocol.md, sim.sign), so that
no signature it hands out can pass for a signed reading (a COSE Sig_structure starts 84 6A "Signature1")
or a TLS CertificateVerify. The check here applies the same prefix, with cryptography alone.
"""

from binascii import unhexlify

from . import verify

CONTEXT = b"safebench sim.sign\x00"  # the firmware's `sim_rpc.CONTEXT`


def check_signature(cert, message: bytes, signature: bytes) -> None:
    """Check a `sim.sign` signature over `message` with the certificate's key (VerificationError if not)."""
    verify.raw_signature(cert, CONTEXT + message, signature)


def sign_and_verify(device, message: bytes, ca_cert, key=None):
    """Have the board sign `message` (with `key`, default its SIM's signing key); check the signature (over
    CONTEXT + message) and the certificate chain. Returns the evidence."""
    iccid = device.call("sim.info", objects=False)["iccid"]
    cert_der = unhexlify(device.call("identity")["certificate"])  # the one it signs under: enrolled, or the card's
    cert = verify.certificate_chain(cert_der, ca_cert)
    signed = device.call("sim.sign", message=message.hex(), **({"key": key.hex()} if key else {}))
    signature = unhexlify(signed["signature"])
    check_signature(cert, message, signature)
    return {"iccid": iccid, "key": signed["key"], "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(), "context": CONTEXT.hex(), "message": message.hex(),
            "signature": signed["signature"], "certificate": cert_der.hex(), "verified": True}
