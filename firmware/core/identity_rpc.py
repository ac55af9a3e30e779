# The `identity` method of the command protocol (docs/protocol.md): the certificate the device signs under now.
# Apart from sim_rpc so that the sim.* methods' heap does not carry it.
from jsonrpc import hex_text
from sim_session import session


def identity():
    """`identity`: the certificate the device signs under now and its CA chain (hex DER), and which store holds
    them: "flash" once the SIM is enrolled (enrolled_identity.py), else "card" (its client certificate file)."""
    s = session()
    iccid, kid = s.identity()
    e = s.roles.enrolled
    return {"iccid": iccid, "kid": hex_text(kid), "store": "flash" if e else "card",
            "certificate": hex_text(s.certificate()), "chain": [hex_text(c) for c in e["chain"]] if e else []}
