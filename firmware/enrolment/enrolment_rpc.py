# The `enroll` method of the command protocol (docs/protocol.md, docs/enrolment.md): a factory SIM's
# operational identity from an EST server, no one touching the device. The SIM makes the key pair in its
# enrolment key container (the private key never leaves it), the board the certificate request, which the SIM
# signs, and EST runs inside TLS 1.3 with the SIM's keys: the bootstrap credential for /simpleenroll, the
# operational one (same key, a new certificate) for /simplereenroll once enrolled. The issued certificate and
# the CA chain go to the board's flash, signed by the SIM (enrolled_identity.py), and sign from then on.
import sys

from jsonrpc import hex_text
from tls_rpc import open_tls, tls_options, unload

RENEW_DAYS = 10  # of the EST server's 30: time enough to retry while the certificate still works


def enroll(**params):
    """The method: enrol (or, enrolled, re-enrol) at the EST server `params` name (those of tls_rpc.tls_options;
    `ca`: the server's trust anchor, hex DER, default the card's CA file)."""
    import simroles
    from sim_session import session

    options = tls_options(**params)
    s = session()
    roles = s.roles
    loaded = set(sys.modules)
    try:
        if roles.enrolled:
            operation, cert, key_roles = "simplereenroll", s.certificate(), roles
            key, public = roles.enrolled["key"], roles.enrolled["public"]
            from x509 import Certificate

            point = Certificate(cert).point()
        else:  # factory state, or an enrolled identity the SIM did not vouch for: the bootstrap credential
            operation, key_roles = "simpleenroll", simroles.Roles(dict(roles.ids))
            cert = s.file(key_roles["client_cert"])
            key, public = key_roles["enrolment_key"], key_roles["enrolment_public_key"]
            point = s.applet(lambda c: c.generate_key_pair(key))
        issued, chain = _enrol(s, options, operation, key, point, key_roles, cert)
        import enrolled_identity

        anchor = options[4].get("trust_anchor") or b""
        enrolled_identity.save(s, key, public, issued, "%s:%d" % options[:2], anchor, chain)
        # Found again with the new identity (its key signs, its kid names the device), and its binding checked.
        s._roles = s._identity = None
        s.binding_checked = False
        from x509 import Certificate, name_text, time_text

        c = Certificate(issued)
        iccid, kid = s.identity()  # the new one's, read back through the SIM's check of the file
        return {"operation": operation, "iccid": iccid, "kid": hex_text(kid), "subject": name_text(c.subject),
                "issuer": name_text(c.issuer), "not_after": time_text(c.not_after), "store": "flash",
                "chain": len(chain)}
    finally:
        unload(loaded)


def _enrol(s, options, operation, key, point, key_roles, cert):
    """(the issued certificate, the CA chain), both DER, for `point` (the SIM's key `key`)."""
    from pkcs10 import request
    from tls_record import buffers

    csr = request(s.iccid(), point, lambda digest: s.applet(lambda c: c.sign_hash(key, digest)))
    record_buffers = buffers()
    from simkeys import SimKeys

    keys = SimKeys(s.card(), s.modem.network_time, key_roles, s.file, s, cert)
    import est

    host = options[0]
    conn = open_tls(keys, s.modem, record_buffers, options)
    try:
        chain = est.certificates(est.request(conn, host, "GET", "cacerts"))
        issued = est.certificates(est.request(conn, host, "POST", operation, est.encode(csr), "application/pkcs10"))
    finally:
        conn.close()
    from x509 import Certificate

    # The answer came over TLS from the server the trust anchor authenticated: what is left to check is that
    # the certificate is for the key the SIM made.
    if not issued or bytes(Certificate(issued[0]).point()) != bytes(point):
        raise est.EnrolmentError("the EST server issued a certificate for another key than the SIM's")
    return issued[0], chain


def renew_if_due(s):
    """Re-enrol at the server of the last enrolment when the certificate has less than RENEW_DAYS left by the
    network's clock (None when it is not due, or the time is unknown): the device keeps its identity current by
    itself, each time it goes online (mqtt.connect). A failed renewal is told, not raised: the certificate it
    has is still valid."""
    from utc import epoch_seconds
    from x509 import Certificate

    e = s.roles.enrolled
    now = s.modem.network_time()
    if not e or now is None:
        return None
    left = epoch_seconds(Certificate(e["cert"]).not_after) - epoch_seconds(now)
    if left >= RENEW_DAYS * 86400:
        return None
    host, _, port = e["est"].rpartition(":")
    try:
        return enroll(host=host, port=int(port), ca=hex_text(e["anchor"]) if e["anchor"] else None)
    except Exception as err:
        return {"error": str(err), "type": type(err).__name__}
