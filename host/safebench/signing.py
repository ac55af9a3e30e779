"""One signature made by a board's SIM, checked on the host against the certificate the SIM holds."""

from binascii import unhexlify

from . import verify


def sign_and_verify(device, message: bytes, ca_cert, key=None):
    """Have the board sign `message` (with `key`, default its SIM's signing key); check the signature and
    the certificate chain. Returns the evidence."""
    iccid = device.call("sim.info", objects=False)["iccid"]
    cert_der = unhexlify(device.call("sim.read_file")["data"])  # the board knows its SIM's certificate file
    cert = verify.certificate_chain(cert_der, ca_cert)
    signed = device.call("sim.sign", message=message.hex(), **({"key": key.hex()} if key else {}))
    signature = unhexlify(signed["signature"])
    verify.raw_signature(cert, message, signature)
    return {"iccid": iccid, "key": signed["key"], "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(), "message": message.hex(), "signature": signed["signature"],
            "certificate": cert_der.hex(), "verified": True}
