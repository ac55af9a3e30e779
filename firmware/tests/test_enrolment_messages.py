"""The enrolment feature's messages, made in the real MicroPython VM and read with cryptography: the PKCS#10
request the board builds (its signature, key and subject) and the certs-only PKCS#7 it takes from EST."""

import base64
import datetime
import json
import os
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from .test_on_unix_port import FEATURES, HERE, MICROPYTHON

# In the VM: a request for a key whose signature SoftKeys makes as the SIM would (raw r||s over the digest).
_MAKE_REQUEST = """
import sys, json
from binascii import hexlify, unhexlify
import pkcs10, softkeys
d = int(sys.argv[1], 16)
point = unhexlify(sys.argv[2])
def sign(digest):
    r, s = softkeys.sign_digest(d, digest)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")
print(hexlify(pkcs10.request(sys.argv[3], point, sign)).decode())
"""


def _vm(script, *args, stdin=None):
    env = dict(os.environ, MICROPYPATH=":".join(str(d) for d in (HERE, *FEATURES)))
    res = subprocess.run([MICROPYTHON, "-c", script, *args], capture_output=True, text=True, timeout=60, env=env,
                         input=stdin)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout.strip()


def test_the_boards_request_is_a_pkcs10_signed_by_its_key():
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    d = key.private_numbers().private_value
    csr = x509.load_der_x509_csr(bytes.fromhex(_vm(_MAKE_REQUEST, f"{d:x}", point.hex(), "8944000000000000017")))
    assert csr.is_signature_valid
    assert csr.public_key().public_numbers() == key.public_key().public_numbers()
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "8944000000000000017"
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA256) and len(csr.attributes) == 0


def _cert(name, key, issuer_key):
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(issuer_key, hashes.SHA256()))


_CERTIFICATES = """
import sys, json
from binascii import hexlify
import est
try:
    print(json.dumps([hexlify(c).decode() for c in est.certificates(sys.stdin.buffer.read())]))
except est.EnrolmentError as e:
    print(json.dumps({"error": str(e)}))
"""


def test_every_certificate_of_a_certs_only_pkcs7_comes_out():
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(2)]
    certs = [_cert(f"c{i}", k, k) for i, k in enumerate(keys)]
    der = pkcs7.serialize_certificates(certs, serialization.Encoding.DER)
    got = json.loads(_vm(_CERTIFICATES, stdin=base64.encodebytes(der).decode()))
    assert sorted(got) == sorted(c.public_bytes(serialization.Encoding.DER).hex() for c in certs)  # a DER SET OF


def test_what_is_no_pkcs7_is_an_enrolment_error():
    for answer in ("not base64 at all!", base64.b64encode(b"\x30\x03\x02\x01\x00").decode(), ""):
        got = json.loads(_vm(_CERTIFICATES, stdin=answer))
        assert "not a certs-only PKCS#7" in got["error"], (answer, got)
