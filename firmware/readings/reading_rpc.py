# The `reading` method of the command protocol (docs/protocol.md): one sensor reading signed by the SIM.
from jsonrpc import hex_text
from reading import signed_reading
from seqcounter import SeqCounter
from sim_session import session
from utc import epoch_seconds

_counter = None


def reading():
    """One sensor reading signed by the SIM as COSE_Sign1 over SenML-CBOR, with a never-repeating seq."""
    global _counter
    import board

    s = session()
    iccid, kid = s.identity()
    now = s.modem.network_time()
    if _counter is None:
        _counter = SeqCounter()
    seq = _counter.next()
    t = None if now is None else epoch_seconds(now)
    key = s.roles["signing_key"]
    cose = s.applet(lambda c: signed_reading(c, key, kid, iccid, seq, board.read_sensor(), t))
    return {"seq": seq, "kid": hex_text(kid), "cose": hex_text(cose)}
