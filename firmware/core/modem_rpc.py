# The `modem.*` methods of the command protocol (docs/protocol.md): the network clock, and a lab check of
# the modem's TCP data path.
from jsonrpc import hex_param, hex_text
from sim_session import session


def modem_time():
    t = session().modem.network_time()
    return {"utc": None if t is None else "%04d-%02d-%02dT%02d:%02d:%02dZ" % t}


def modem_tcp_echo(host, port, data="", timeout_ms=10000):
    """Lab check of the modem's data path: send `data` (hex) over TCP, return what comes back."""
    payload = hex_param(data, "data")
    sock = session().modem.open_tcp(host, port, timeout_ms)
    try:
        sock.write(payload)
        got = bytearray()
        while len(got) < len(payload):
            chunk = sock.read(len(payload) - len(got))
            if not chunk:
                break
            got += chunk
    finally:
        sock.close()
    return {"data": hex_text(got)}
