# TEST ONLY, never deployed: a SimKeys stand-in that keeps its private key in RAM, so the TLS client
# can be exercised on the unix port without a modem. Same duck type as firmware/tls/simkeys.py.
# ECDSA with a random k (os.urandom), P-256 arithmetic from p256.py.
import hashlib
import os

import p256


def _scalar():
    return int.from_bytes(os.urandom(40), "big") % (p256.N - 1) + 1


def sign_digest(d, digest, k=None):
    """(r, s) of ECDSA over a SHA-256 digest with private scalar d; k random unless given (for vectors)."""
    e = int.from_bytes(digest, "big") % p256.N
    while True:
        kk = k or _scalar()
        r = p256.mul_base(kk)[0] % p256.N
        s = pow(kk, p256.N - 2, p256.N) * (e + r * d) % p256.N
        if r and s:
            return r, s


class SoftKeys:
    def __init__(self, cert_der, private_scalar, ca_der, now=None):
        self._cert = cert_der
        self._d = private_scalar
        self._ca = ca_der
        self._now = now
        self._eph = None
        self.calls = []

    def certificate(self):
        self.calls.append("certificate")
        return self._cert

    def trust_anchor(self):
        self.calls.append("trust_anchor")
        return self._ca

    def ephemeral(self):
        self.calls.append("ephemeral")
        self._eph = _scalar()
        return p256.encode_point(*p256.mul_base(self._eph))

    def ecdh(self, peer_point):
        self.calls.append("ecdh")
        x, y = p256.decode_point(peer_point)
        shared = p256.mul(self._eph, x, y)
        self._eph = None  # one use, like the SIM's ephemeral container
        return shared[0].to_bytes(32, "big")

    def sign_sha256(self, digest):
        self.calls.append("sign_sha256")
        r, s = sign_digest(self._d, digest)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def verify_sha256(self, point, digest, sig_rs):
        self.calls.append("verify_sha256")
        x, y = p256.decode_point(point)
        return p256.verify(x, y, digest, int.from_bytes(sig_rs[:32], "big"), int.from_bytes(sig_rs[32:], "big"))

    def now(self):
        self.calls.append("now")
        return self._now


def digest(data):
    return hashlib.sha256(data).digest()
