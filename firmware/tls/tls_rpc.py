# The `tls.echo` JSON-RPC method: a TLS 1.3 session with the SIM's keys (ECDHE and the client
# signature on the card, the trust anchor from the card's CA file unless one is given), one line of
# data each way, and what was negotiated. Transport: the modem's TCP socket commands (Quectel and
# SIMCom dialects), or the board's native socket (unix port, boards with their own network stack).
import gc
import time
from binascii import hexlify, unhexlify

from jsonrpc import RpcError
from rpc_codes import INVALID_PARAMS

_SUITES = {"gcm": 0x1301, "ccm": 0x1304}


def tls_echo(**params):
    """The method: `echo` with the keys of this board's SIM session, over its modem where it can."""
    from sim_session import session
    from simkeys import SimKeys

    s = session()
    return echo(lambda: SimKeys(s.card(), s.modem.network_time, s.roles, s.file), s.modem, **params)


def _param(ok, text):
    if not ok:
        raise RpcError(INVALID_PARAMS, text)


def _connect(modem, host, port, transport):
    """The modem's TCP socket where its driver has them (or if asked), else the board's own network."""
    if transport == "modem" or (transport == "auto" and hasattr(modem, "send")):
        return modem.open_tcp(host, port)
    import socket

    sock = socket.socket()
    try:
        sock.connect(socket.getaddrinfo(host, port)[0][-1])
    except OSError:
        sock.close()
        raise
    return sock


def echo(open_keys, modem, host, port, server_name=None, data="", ca=None, suites=None, verify="firmware", limit=1024,
         hello_retry=False, transport="auto"):
    """`open_keys()`: the SIM's keys (simkeys.SimKeys), asked for once the params are valid; `modem`: the
    modem driver (None: the board's own network). hello_retry: send the first ClientHello without key
    share, so the server must answer with a HelloRetryRequest (exercises that path against real servers)."""
    _param(isinstance(host, str) and host, "host must be a name or an address")
    _param(isinstance(port, int) and 0 < port < 65536, "port must be 1..65535")
    _param(server_name is None or isinstance(server_name, str), "server_name must be a string")
    _param(verify in ("firmware", "sim"), "verify must be firmware or sim")
    _param(transport in ("auto", "modem", "native"), "transport must be auto, modem or native")
    _param(isinstance(limit, int) and 1 <= limit <= 4096, "limit must be 1..4096")
    try:
        payload = unhexlify(data)
        anchor = unhexlify(ca) if ca else None
    except (ValueError, TypeError):
        raise RpcError(INVALID_PARAMS, "data and ca must be hex strings") from None
    opts = {"verify_on_sim": verify == "sim", "share_in_first_hello": not hello_retry}
    if anchor is not None:
        opts["trust_anchor"] = anchor
    if suites is not None:
        _param(isinstance(suites, list) and suites and all(s in _SUITES for s in suites), "suites: gcm and/or ccm")
        opts["suites"] = [_SUITES[s] for s in suites]

    import tls13

    keys = open_keys()
    apdus = getattr(keys, "apdus", None)
    low = [gc.mem_free()]

    def probe():  # live heap at every record and SIM call of the handshake (collected first: no garbage)
        gc.collect()
        free = gc.mem_free()
        if free < low[0]:
            low[0] = free

    gc.collect()
    free_before = gc.mem_free()
    t0 = time.ticks_ms()
    conn = tls13.TLSClient(_connect(modem, host, port, transport), keys, server_name or host, probe=probe, **opts)
    try:
        conn.handshake()
    except tls13.TLSError as e:
        e.data["sim_ops"] = conn.info["sim_ops"]  # what the SIM did before it failed
        raise
    res = dict(conn.info)
    res["apdus"] = apdus() if apdus else None
    res["heap_used_max"] = free_before - low[0]  # sampled high-water of live data, lazily loaded modules included
    try:
        conn.write(payload)
        reply = conn.readline(limit)
    except tls13.TLSError:
        conn.close()
        raise
    conn.close()
    res["total_ms"] = time.ticks_diff(time.ticks_ms(), t0)
    res["sent"] = len(payload)
    res["received"] = hexlify(reply).decode().upper()
    res["wiped"] = conn.records.reader is None and conn.records.writer is None
    gc.collect()
    res["mem_free"] = gc.mem_free()
    return res
