# The SIM's keys as a TLS client needs them: certificate, trust anchor, ECDHE and signatures on the card.
#
# Which container plays which part comes from `roles` (simroles.py: the board's SIM layout).
from simroles import GENERIC


class SimKeys:
    def __init__(self, card, clock=None, roles=GENERIC, read_file=None, spare=None, cert=None):
        self.card = card  # an open iotsafe.IoTSafe
        self.cert = cert  # the client certificate (DER) where it is not the card's client_cert file
        self.spare = spare  # holds `ephemeral_point` between handshakes (the SIM session), or None: none kept
        self.clock = clock  # () -> (y, m, d, hh, mm, ss) UTC, or None when the network time is unknown
        self.roles = roles
        self.read_file = read_file or card.read_file  # the board's cache of certificate files, if any
        self.apdus_before = card.channel.csim.apdus
        self.made_ahead = False  # whether ephemeral() handed out the pair made after the previous handshake

    def certificate(self):
        return self.cert if self.cert is not None else self.read_file(self.roles["client_cert"])

    def trust_anchor(self):
        return self.read_file(self.roles["ca_cert"])

    def ephemeral(self):
        """The public point 04||X||Y of an ECDHE key pair on the card that no handshake has used: the one made
        ahead (make_next_ephemeral), taken so that it is never handed out twice, or else a new one."""
        spare = self.spare
        if spare is not None and spare.ephemeral_point:
            point, spare.ephemeral_point = spare.ephemeral_point, None
            self.made_ahead = True
            return point
        return self.card.generate_key_pair(self.roles["ephemeral_key"])

    def make_next_ephemeral(self):
        """After a handshake, the next one's key pair (Generate Key Pair: most of a handshake's card time), made
        now so that it is off that handshake's critical path. It replaces the key just used in the container."""
        spare = self.spare
        if spare is not None and not spare.ephemeral_point:
            spare.ephemeral_point = self.card.generate_key_pair(self.roles["ephemeral_key"])

    def ecdh(self, peer_point):
        """The ECDHE shared secret (X coordinate) of the ephemeral key and the peer's point."""
        self.card.put_public_key(self.roles["peer_key"], peer_point)
        return self.card.compute_dh(self.roles["ephemeral_key"], self.roles["peer_key"])

    def sign_sha256(self, digest):
        return self.card.sign_hash(self.roles["signing_key"], digest)

    def verify_sha256(self, point, digest, signature):
        """Check a peer's ECDSA signature on the card (Put Public Key, then Verify Signature)."""
        self.card.put_public_key(self.roles["peer_key"], point)
        return self.card.verify_hash(self.roles["peer_key"], digest, signature)

    def now(self):
        return self.clock() if self.clock else None

    def apdus(self):
        """APDUs sent since these keys were handed out, for measurements."""
        return self.card.channel.csim.apdus - self.apdus_before
