"""One signature made by a board's SIM, checked on the host against the certificate the SIM holds."""

from binascii import unhexlify

from . import verify
from .provision import CLIENT_CERT_FILE, SIGNING_KEY


def sign_and_verify(device, message: bytes, ca_cert, key=SIGNING_KEY):
    """Have the board sign `message`; check the signature and the certificate chain. Returns the evidence."""
    iccid = device.call("sim.info", objects=False)["iccid"]
    cert_der = unhexlify(device.call("sim.read_file", file=CLIENT_CERT_FILE.hex())["data"])
    cert = verify.certificate_chain(cert_der, ca_cert)
    signed = device.call("sim.sign", message=message.hex(), key=key.hex())
    signature = unhexlify(signed["signature"])
    verify.raw_signature(cert, message, signature)
    return {"iccid": iccid, "key": key.hex().upper(), "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(), "message": message.hex(), "signature": signed["signature"],
            "certificate": cert_der.hex(), "verified": True}
