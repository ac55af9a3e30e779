# The firmware's command protocol: JSON-RPC methods over the board's USB serial (docs/protocol.md).
#
# The modem and SIM stack is imported on the first SIM request, so a board with no modem still
# boots, prints its ready line and answers `info`. Binary values travel as upper-case hex strings.
import sys
import time
from binascii import hexlify, unhexlify

import jsonrpc

VERSION = "0.2.0"
E_AT_TIMEOUT = -32001
E_MODEM = -32002
E_CARD = -32003
E_MODEM_REPLY = -32004
_SW_CHANNEL_CLOSED = 0x6881
_CME_SIM_BUSY = 14
BUSY_RETRY_MS = 3000

_sim = None


def _hex(b):
    return hexlify(b).decode().upper()


def _bytes(value, name, size=None):
    try:
        b = unhexlify(value)
    except (ValueError, TypeError):
        raise jsonrpc.RpcError(jsonrpc.INVALID_PARAMS, "%s must be a hex string" % name) from None
    if size is not None and len(b) != size:
        raise jsonrpc.RpcError(jsonrpc.INVALID_PARAMS, "%s must be %d bytes" % (name, size))
    return b


def _name(ref):
    """How a reference is shown back: its hex ID, or its label."""
    return ref if isinstance(ref, str) else _hex(ref)


def _ref(value, name, role=None):
    """An object reference from JSON: {"label": "..."} or a hex ID string; None: the SIM's `role`."""
    if value is None and role:
        roles = sim().roles
        ref = roles.get(role) or (roles.get("signing_key") if role == "signing_public_key" else None)
        if ref is None:  # the public half of a key pair shares its ID unless sim.json says otherwise
            raise jsonrpc.RpcError(jsonrpc.INVALID_PARAMS, "this SIM has no %s: name the %s" % (role, name))
        return ref
    if isinstance(value, dict) and isinstance(value.get("label"), str):
        return value["label"]
    return _bytes(value, name)


class Sim:
    """The modem and the IoT SAFE applet behind it, on a logical channel kept open between requests."""

    def __init__(self):
        import board
        from apdu import Csim
        from atchannel import ATChannel
        from modem import for_board

        uart = board.modem_uart()
        board.modem_power_on(uart)
        self.at = ATChannel(uart, self._urc)
        self.modem = for_board(board, self.at)
        self.csim = Csim(self.at, max_line=getattr(board, "MODEM_MAX_LINE", None))
        self.card = None
        self._stale = True  # channels a previous run may have left open are closed before the first use
        self._identity = None
        self._files = {}  # certificate files read this boot; forgotten when the card may have changed
        self._iccid = None
        from simroles import load

        self.roles = load()

    def iccid(self):
        """The SIM's ICCID, asked of the modem once per boot (and again after the SIM may have changed)."""
        if self._iccid is None:
            self._iccid = self.modem.iccid()
        return self._iccid

    def file(self, file_id):
        """A file of the card, read once per boot (certificates do not change under a running board)."""
        data = self._files.get(file_id)
        if data is None:
            data = self._files[file_id] = self.applet(lambda c: c.read_file(file_id))
        return data

    def identity(self):
        """(ICCID, kid) of the SIM; kid = SHA-256 of its client certificate. Read once per boot."""
        if self._identity is None:
            import hashlib

            cert = self.file(self.roles["client_cert"])
            self._identity = (self.iccid(), hashlib.sha256(cert).digest())
        return self._identity

    def _urc(self, line):
        if line in (b"RDY", b"APP RDY") or line.startswith(b"+CPIN:"):
            self.modem.lost()  # the modem rebooted or the SIM came back: settings, channels, maybe the card
            self.card = None
            self._files, self._identity, self._iccid = {}, None, None
        self.modem.on_urc(line)

    def applet(self, fn):
        """fn(iotsafe) with the applet selected.

        The channel is reopened once if the card lost it (6881 after a modem or card reset), and a
        busy SIM (+CME ERROR: 14, e.g. right after boot) is asked again for up to BUSY_RETRY_MS.
        """
        from apdu import CardError
        from atchannel import CMEError

        deadline = time.ticks_add(time.ticks_ms(), BUSY_RETRY_MS)
        reopened = False
        while True:
            try:
                return fn(self._open())
            except CardError as e:
                if e.sw != _SW_CHANNEL_CLOSED or reopened:
                    raise
                reopened = True
                self.card = None
            except CMEError as e:
                self._forget()
                if e.code != _CME_SIM_BUSY or time.ticks_diff(deadline, time.ticks_ms()) < 0:
                    raise
                time.sleep_ms(100)
            except Exception:
                self._forget()
                raise

    def _forget(self):
        """After modem trouble what the card has open is unknown: close stale channels before reuse."""
        self.card = None
        self._stale = True
        self._files, self._identity, self._iccid = {}, None, None  # and the SIM may have been swapped
        self.modem.lost()

    def _open(self):
        if self.card is None:
            from apdu import close_stale_channels
            from iotsafe import IoTSafe

            self.modem.ready()
            if self._stale:
                self._stale = not close_stale_channels(self.csim)
            card = IoTSafe(self.csim)
            card.open()
            self.card = card
        return self.card

    def keys(self):
        from simkeys import SimKeys

        return SimKeys(self._open(), self.modem.network_time, self.roles, self.file)


def sim():
    global _sim
    if _sim is None:
        _sim = Sim()
    return _sim


def _record(r):
    out = {"kind": r.get("kind"), "id": _hex(r.get("id", b"")),
           "attributes": {"%02X" % t: _hex(v) for t, v in r["attributes"].items()}}
    if "label" in r:
        out["label"] = r["label"].decode()
    return out


# -- methods ----------------------------------------------------------------------------------

def info():
    import gc

    import board

    gc.collect()
    return {"firmware": VERSION, "board": board.NAME, "platform": sys.platform,
            "micropython": ".".join(str(v) for v in sys.implementation.version[:3]),
            "mpy": getattr(sys.implementation, "_mpy", 0) & 0xFF, "mem_free": gc.mem_free()}


def sim_info(objects=True):
    s = sim()
    res = {"iccid": s.iccid()}

    def read(card):
        res["applet"] = {"%02X" % t: _hex(v) for t, v in card.applet_info().items()}
        if objects:
            res["objects"] = [_record(r) for r in card.objects()]

    s.applet(read)
    return res


def sim_read_file(file=None):
    f = _ref(file, "file", "client_cert")
    return {"data": _hex(sim().applet(lambda c: c.read_file(f)))}


def sim_sign(message=None, hash=None, key=None, on_card_hash=False):
    """Sign a message (hashed here with SHA-256, or on the card) or a SHA-256 digest with a SIM key."""
    if (message is None) == (hash is None):
        raise jsonrpc.RpcError(jsonrpc.INVALID_PARAMS, "give exactly one of message or hash")
    k = _ref(key, "key", "signing_key")
    if hash is not None:
        digest = _bytes(hash, "hash", 32)
        sig = sim().applet(lambda c: c.sign_hash(k, digest))
        return {"alg": "ES256", "key": _name(k), "hash": _hex(digest), "signature": _hex(sig)}
    msg = _bytes(message, "message")
    if on_card_hash:
        return {"alg": "ES256", "key": _name(k), "signature": _hex(sim().applet(lambda c: c.sign_message(k, msg)))}
    import hashlib

    digest = hashlib.sha256(msg).digest()
    sig = sim().applet(lambda c: c.sign_hash(k, digest))
    return {"alg": "ES256", "key": _name(k), "hash": _hex(digest), "signature": _hex(sig)}


def sim_verify(hash, signature, key=None):
    """Check an ECDSA signature over a SHA-256 digest with a public key on the SIM."""
    k, digest, sig = _ref(key, "key", "signing_public_key"), _bytes(hash, "hash", 32), _bytes(signature, "signature", 64)
    return {"valid": sim().applet(lambda c: c.verify_hash(k, digest, sig))}


def sim_random(length=16):
    if not isinstance(length, int) or not 1 <= length <= 256:
        raise jsonrpc.RpcError(jsonrpc.INVALID_PARAMS, "length must be 1..256")
    return {"random": _hex(sim().applet(lambda c: c.random(length)))}


def sim_keygen(key):
    """Refresh the key pair in a private key container; returns the new public key."""
    k = _ref(key, "key")
    return {"public_key": _hex(sim().applet(lambda c: c.generate_key_pair(k)))}


def sim_read_pubkey(key=None):
    k = _ref(key, "key", "signing_public_key")
    return {"public_key": _hex(sim().applet(lambda c: c.read_public_key(k)))}


def sim_apdu(apdu):
    """Raw APDU on the applet's channel (lab use); the channel bits of CLA are set here."""
    raw = _bytes(apdu, "apdu")
    if not 4 <= len(raw) <= 261:
        raise jsonrpc.RpcError(jsonrpc.INVALID_PARAMS, "apdu must be 4..261 bytes")

    def send(card):
        ch = card.channel
        data = raw[5:5 + raw[4]] if len(raw) > 5 else None
        le = raw[-1] if len(raw) == 5 or (len(raw) > 5 and len(raw) == 6 + raw[4]) else None
        return ch.command(raw[1], raw[2], raw[3], data, le)

    data, sw = sim().applet(send)
    return {"data": _hex(data), "sw": "%04X" % sw}


_counter = None


def reading():
    """One sensor reading signed by the SIM as COSE_Sign1 over SenML-CBOR, with a never-repeating seq."""
    global _counter
    import board
    from modem import epoch_seconds
    from reading import signed_reading
    from seqcounter import SeqCounter

    s = sim()
    iccid, kid = s.identity()
    now = s.modem.network_time()
    if _counter is None:
        _counter = SeqCounter()
    seq = _counter.next()
    t = None if now is None else epoch_seconds(now)
    key = s.roles["signing_key"]
    cose = s.applet(lambda c: signed_reading(c, key, kid, iccid, seq, board.read_sensor(), t))
    return {"seq": seq, "kid": _hex(kid), "cose": _hex(cose)}


def tls_echo(**params):
    """A TLS 1.3 session with the SIM's keys: one line each way (tls_rpc.py; docs/protocol.md)."""
    from tls_rpc import echo

    return echo(sim(), **params)


def modem_tcp_echo(host, port, data="", timeout_ms=10000):
    """Lab check of the modem's data path: send `data` (hex) over TCP, return what comes back."""
    payload = _bytes(data, "data")
    s = sim()
    sock = s.modem.open_tcp(host, port, timeout_ms)
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
    return {"data": _hex(got)}


def modem_time():
    t = sim().modem.network_time()
    return {"utc": None if t is None else "%04d-%02d-%02dT%02d:%02d:%02dZ" % t}


METHODS = {
    "info": info,
    "sim.info": sim_info,
    "sim.read_file": sim_read_file,
    "sim.sign": sim_sign,
    "sim.verify": sim_verify,
    "sim.random": sim_random,
    "sim.keygen": sim_keygen,
    "sim.read_pubkey": sim_read_pubkey,
    "sim.apdu": sim_apdu,
    "modem.time": modem_time,
    "modem.tcp_echo": modem_tcp_echo,
    "tls.echo": tls_echo,
    "reading": reading,
}


def error_code(exc):
    """JSON-RPC error code and data for the firmware's own exception classes."""
    name = type(exc).__name__
    if name == "ATTimeout":
        return E_AT_TIMEOUT, {"type": name}
    if name in ("ATError", "CMEError"):
        return E_MODEM, {"type": name, "cme": getattr(exc, "code", None)}
    if name == "CardError":
        return E_CARD, {"type": name, "sw": "%04X" % exc.sw}
    if name == "ModemReplyError":
        return E_MODEM_REPLY, {"type": name}
    return jsonrpc.INTERNAL_ERROR, {"type": name}


def main():
    import board

    jsonrpc.notify("ready", {"firmware": VERSION, "board": board.NAME})
    jsonrpc.serve(METHODS, error_code)
