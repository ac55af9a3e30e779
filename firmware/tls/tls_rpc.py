# The `tls.echo` JSON-RPC method: a TLS 1.3 session with the SIM's keys (ECDHE and the client
# signature on the card, the trust anchor from the card's CA file unless one is given), one line of
# data each way, and what was negotiated. Transport: the modem's TCP socket commands (Quectel and
# SIMCom dialects), or the board's native socket (unix port, boards with their own network stack).
import gc
import sys
import time
from binascii import hexlify, unhexlify

from jsonrpc import RpcError, error_of
from rpc_codes import INVALID_PARAMS

_SUITES = {"gcm": 0x1301, "ccm": 0x1304}
# TLS 1.3 tells a client that the server refused its certificate only after the client's last flight, if at
# all: a server that does closes or resets the connection then.
REFUSED_CERTIFICATE = "the server ended the connection once it had the SIM's certificate, as it does when it does " \
                      "not accept it: %s"
# The modules a session loads, in the order that keeps a small board's heap in one piece: the record buffers
# first, then the SIM's keys (role discovery) and the connection (the modem's bring-up), each phase's code gone
# before the next is loaded; then the TLS client, each module after the ones it imports (one at a time, so an
# import that fails is the only one missing); X.509 and P-256 when the handshake needs them.
_CLIENT = ("aead", "hkdf", "tls_record", "tls_messages", "tls13")


def tls_echo(**params):
    """The method: `echo` with the keys of this board's SIM session, over its modem where it can.

    The modules the session loads (the TLS client, X.509, P-256: most of a small board's heap) are
    unloaded again whatever happened, so a failed handshake leaves the heap as the request found it."""
    from sim_session import session

    s = session()  # the board's SIM session lives on after the request, with its module
    loaded = set(sys.modules)
    try:
        from tls_record import buffers

        record_buffers = buffers()  # first, while the heap has them in one piece
        res = echo(lambda: sim_keys(s), s.modem, record_buffers, **params)
    finally:
        unload(loaded)
    res["mem_free"] = gc.mem_free()
    return res


def sim_keys(s):
    """The keys of the SIM session `s`; the card is opened and its roles found (role discovery reads files)
    before the TLS client's modules are loaded, so the two never share the heap."""
    from simkeys import SimKeys

    return SimKeys(s.card(), s.modem.network_time, s.roles, s.file, s, s.certificate())


def unload(loaded):
    """Unload every module the request loaded (jsonrpc lets go those whose import ran out of memory)."""
    for name in [m for m in sys.modules if m not in loaded]:
        del sys.modules[name]
    gc.collect()


def failed(e, text, **data):
    """An RpcError saying `text`, with the code and data of its cause `e` (and `data`)."""
    code, cause = error_of(e)
    data.update(cause)
    return RpcError(code, text, data)


def _param(ok, text):
    if not ok:
        raise RpcError(INVALID_PARAMS, text)


def _connect(modem, host, port, transport, timeout_ms):
    """The modem's TCP socket where its driver has them (or if asked), else the board's own network."""
    if transport == "modem" or (transport == "auto" and hasattr(modem, "send")):
        return modem.open_tcp(host, port, timeout_ms)
    import tcp

    return tcp.connect(host, port, timeout_ms)


def tls_options(host, port, server_name=None, ca=None, suites=None, verify="firmware", hello_retry=False,
                transport="auto", timeout_ms=30000):
    """A method's TLS params checked (INVALID_PARAMS if one is wrong) for open_tls: where to connect, how,
    and the TLSClient's options. hello_retry: send the first ClientHello without key share, so the server
    must answer with a HelloRetryRequest (exercises that path against real servers). timeout_ms: how long the
    connect and each wait for the server may take."""
    _param(isinstance(host, str) and host, "host must be a name or an address")
    _param(isinstance(port, int) and 0 < port < 65536, "port must be 1..65535")
    _param(isinstance(timeout_ms, int) and 0 < timeout_ms <= 600000, "timeout_ms must be 1..600000")
    _param(server_name is None or isinstance(server_name, str), "server_name must be a string")
    _param(verify in ("firmware", "sim"), "verify must be firmware or sim")
    _param(transport in ("auto", "modem", "native"), "transport must be auto, modem or native")
    opts = {"verify_on_sim": verify == "sim", "share_in_first_hello": not hello_retry, "server_name": server_name or host}
    if ca:
        try:
            opts["trust_anchor"] = unhexlify(ca)
        except (ValueError, TypeError):
            raise RpcError(INVALID_PARAMS, "ca must be a hex string") from None
    if suites is not None:
        _param(isinstance(suites, list) and suites and all(s in _SUITES for s in suites), "suites: gcm and/or ccm")
        opts["suites"] = [_SUITES[s] for s in suites]
    return host, port, transport, timeout_ms, opts


def open_tls(keys, modem, buffers, options, probe=None):
    """A TLS 1.3 session with `keys` (simkeys.SimKeys), its handshake done, where `options` (of tls_options)
    say. Loads the TLS client; a failed handshake closes the socket."""
    host, port, transport, timeout_ms, opts = options
    opts = dict(opts, buffers=buffers, probe=probe)
    server_name = opts.pop("server_name")
    sock = _connect(modem, host, port, transport, timeout_ms)
    conn = None
    try:
        for name in _CLIENT:  # with the network up: the modem's bring-up code is gone from the heap by then
            __import__(name)
        from tls13 import TLSClient
        from tls_record import TLSError

        conn = TLSClient(sock, keys, server_name, **opts)
        try:
            session = conn.handshake()
        except TLSError as e:
            e.data["sim_ops"] = conn.info["sim_ops"]  # what the SIM did before it failed
            raise
        except Exception as e:
            if "sign_sha256" not in conn.info["sim_ops"] or not isinstance(getattr(e, "code", None), int):
                raise  # not after our certificate, or not the network's error (a MemoryError, say)
            raise failed(e, REFUSED_CERTIFICATE % e, sim_ops=conn.info["sim_ops"]) from None
        apdus = getattr(keys, "apdus", None)
        conn.info["apdus"] = apdus() if apdus else None  # the handshake's own, before the next key is made
        conn.info["ephemeral_made_ahead"] = getattr(keys, "made_ahead", False)
        _make_next_ephemeral(keys)
        return session
    finally:
        if conn is None:  # the handshake closes the connection when it fails
            sock.close()


def _make_next_ephemeral(keys):
    make = getattr(keys, "make_next_ephemeral", None)
    try:
        if make:
            make()
    except Exception:  # the session is up all the same; the next handshake makes its key itself
        pass


def echo(open_keys, modem, buffers, data="", limit=1024, **params):
    """`open_keys()`: the SIM's keys (simkeys.SimKeys), asked for once the params are valid; `modem`: the
    modem driver (None: the board's own network); `params`: those of tls_options."""
    options = tls_options(**params)
    _param(isinstance(limit, int) and 1 <= limit <= 4096, "limit must be 1..4096")
    try:
        payload = unhexlify(data)
    except (ValueError, TypeError):
        raise RpcError(INVALID_PARAMS, "data must be a hex string") from None
    keys = open_keys()
    low = [gc.mem_free()]

    def probe():  # live heap at every record and SIM call of the handshake (collected first: no garbage)
        gc.collect()
        free = gc.mem_free()
        if free < low[0]:
            low[0] = free

    gc.collect()
    free_before = gc.mem_free()
    t0 = time.ticks_ms()
    conn = open_tls(keys, modem, buffers, options, probe)
    from tls_record import TLSError

    try:
        res = dict(conn.info)
        res["heap_used_max"] = free_before - low[0]  # sampled high-water of live data, lazily loaded modules included
        conn.write(payload)
        reply = conn.readline(limit)
    except TLSError as e:
        e.data["sim_ops"] = conn.info["sim_ops"]
        raise
    finally:  # every path closes the connection: the modem's socket id or the board's socket is free again
        conn.close()
    res["total_ms"] = time.ticks_diff(time.ticks_ms(), t0)
    res["sent"] = len(payload)
    res["received"] = hexlify(reply).decode().upper()
    res["wiped"] = conn.records.reader is None and conn.records.writer is None
    return res
