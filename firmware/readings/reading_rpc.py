# The `reading` method of the command protocol (docs/protocol.md): one sensor reading signed by the SIM.
import sys

from jsonrpc import hex_text
from sim_session import session
from utc import epoch_seconds


def reading():
    """One sensor reading signed by the SIM as COSE_Sign1 over SenML-CBOR, numbered (epoch, seq) never twice."""
    return take()[0]


def take(dropped=0):
    """(`reading`'s answer, the COSE_Sign1 bytes), for the board's own use too: `dropped` tells of readings
    its outbox let go."""
    import board

    s = session()
    iccid, kid = s.identity()  # first: role discovery, the first call's peak, without the binding check's module
    _check_binding(s)
    from seqcounter import board_number

    epoch, seq, warning = board_number(s, lambda: _seconds(s.modem.network_time()))
    # The reading's own modules are imported once the SIM session's first-call work (role discovery, the
    # seal's key) is done: not on the heap at its peak.
    from reading import signed_reading

    t = _seconds(s.modem.network_time())
    key = s.roles["signing_key"]
    from service import board_id

    here = board_id()
    cose = s.applet(lambda c: signed_reading(c, key, kid, iccid, epoch, seq, board.read_sensor(), t, dropped, here))
    r = {"epoch": epoch, "seq": seq, "kid": hex_text(kid), "board": here, "cose": hex_text(cose)}
    if warning:
        r["warning"] = warning
    return r, cose


def _check_binding(s):
    """A SIM other than the one the board is bound to signs no reading (binding.check). The check's module is
    let go again: it need not be on the heap at the reading's peak (64 KB boards)."""
    import binding

    try:
        binding.check(s)
    finally:
        if "binding_rpc" not in sys.modules:  # which keeps it
            del sys.modules["binding"]


def _seconds(utc):
    return None if utc is None else epoch_seconds(utc)
