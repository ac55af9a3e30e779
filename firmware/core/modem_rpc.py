# The `modem.*` methods of the command protocol (docs/protocol.md): the bring-up's stages, the network clock,
# and a lab check of the modem's TCP data path.
from jsonrpc import RpcError, hex_param, hex_text
from rpc_codes import INVALID_PARAMS
from sim_session import session


def modem_status(attach=False, timeout_ms=None):
    """Each bring-up stage as it stands (bringup.py); with `attach`, carried out first (registration waits up
    to `timeout_ms`)."""
    from bringup import status

    if not isinstance(attach, bool):
        raise RpcError(INVALID_PARAMS, "attach must be true or false")
    if timeout_ms is not None and not (isinstance(timeout_ms, int) and 0 <= timeout_ms <= 600000):
        raise RpcError(INVALID_PARAMS, "timeout_ms must be a number of ms, 0 to 600000")
    return status(session().modem, attach, timeout_ms)


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
