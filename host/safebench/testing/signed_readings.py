"""Readings signed as the firmware signs them, with a software key: the host's checks of readings (the
verifier, the ingest, their benchmarks) exercised without a board."""

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ES256 = b"\xa1\x01\x26"  # protected header {1: -7}


class ReadingDevice:
    """Signs readings as the firmware composes them (COSE_Sign1, ES256, SenML numbered by epoch and seq) with
    a software key whose certificate comes from `ca` (a pki.CertificateAuthority); registered in `registry`
    unless it is None."""

    ICCID = "8944000000000000001"
    ES256 = ES256

    def __init__(self, ca, registry=None, iccid=None):
        self.ca, self.registry, self.ICCID = ca, registry, iccid or self.ICCID
        self.key = ec.generate_private_key(ec.SECP256R1())
        point = self.key.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
        self.cert_der = ca.issue_device(point, self.ICCID).public_bytes(serialization.Encoding.DER)
        import hashlib

        self.kid = hashlib.sha256(self.cert_der).digest()
        if registry is not None:
            registry.add(self.cert_der, self.ICCID)

    def client_files(self, folder):
        """(certificate, key) PEM files for an MQTT client that stands in for this device's board."""
        from cryptography import x509

        cert, key = folder / f"{self.ICCID}.pem", folder / f"{self.ICCID}.key"
        cert.write_bytes(x509.load_der_x509_certificate(self.cert_der).public_bytes(serialization.Encoding.PEM))
        key.write_bytes(self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert, key

    @property
    def topic(self):
        from safebench.broker import TOPIC

        return TOPIC.format(device=self.ICCID)

    def reading(self, epoch, seq, value=21.5, protected=ES256, unprotected=None, time=None, dropped=0, board=None):
        """The COSE_Sign1 bytes of one reading; `protected` and `unprotected` as given, for malformed ones;
        `board`: the unique ID (hex) of the board it says it was taken on."""
        base = {-2: f"urn:dev:iccid:{self.ICCID}:", 0: "temperature", 1: "Cel", 2: value}
        if time is not None:
            base[-3] = time
        pack = [base, {0: "epoch", 2: epoch}, {0: "seq", 2: seq}] + ([{0: "board", 3: board}] if board else []) \
            + ([{0: "dropped", 2: dropped}] if dropped else [])
        payload = cbor2.dumps(pack)
        r, s = decode_dss_signature(self.key.sign(cbor2.dumps(["Signature1", protected, b"", payload]),
                                                  ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return cbor2.dumps(cbor2.CBORTag(18, [protected, {4: self.kid} if unprotected is None else unprotected,
                                              payload, signature]))
