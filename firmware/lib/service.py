# The firmware's command protocol: JSON-RPC methods over the board's USB serial (docs/protocol.md).
#
# The modem and SIM stack is imported on the first SIM request, so a board with no modem still
# boots, prints its ready line and answers `info`. Binary values travel as upper-case hex strings.
import sys
from binascii import hexlify, unhexlify

import jsonrpc

VERSION = "0.1.0"
E_AT_TIMEOUT = -32001
E_MODEM = -32002
E_CARD = -32003
E_MODEM_REPLY = -32004

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


class Sim:
    """The modem's AT channel and the IoT SAFE applet behind it, opened per request."""

    def __init__(self):
        import board
        from apdu import Csim
        from atchannel import ATChannel

        self.at = ATChannel(board.modem_uart())
        self.csim = Csim(self.at)
        self._ready = False

    def modem(self):
        if not self._ready:
            for _ in range(3):  # the modem may still be booting or mid-URC
                try:
                    self.at.command("AT", timeout_ms=500)
                    break
                except Exception:
                    pass
            self.at.command("ATE0")
            self.at.command("AT+CMEE=1")
            self._ready = True
        return self.at

    def iccid(self):
        for cmd, prefix in (("AT+CCID", b"+CCID:"), ("AT+QCCID", b"+QCCID:"), ("AT+CICCID", b"+ICCID:")):
            try:
                lines = self.modem().command(cmd, prefix)
            except Exception:
                continue
            if lines:
                return lines[0][len(prefix):].strip().strip(b'"').decode()
        return None

    def applet(self, fn):
        """Run fn(iotsafe) with the applet selected on a fresh logical channel, closed afterwards."""
        from iotsafe import IoTSafe

        self.modem()
        card = IoTSafe(self.csim)
        card.open()
        try:
            return fn(card)
        finally:
            card.close()


def sim():
    global _sim
    if _sim is None:
        _sim = Sim()
    return _sim


def info():
    import gc

    import board

    gc.collect()
    return {"firmware": VERSION, "board": board.NAME, "platform": sys.platform,
            "micropython": ".".join(str(v) for v in sys.implementation.version[:3]),
            "mpy": getattr(sys.implementation, "_mpy", 0) & 0xFF, "mem_free": gc.mem_free()}


def sim_info():
    return {"iccid": sim().iccid()}


def sim_read_file(file="02"):
    file_id = _bytes(file, "file")
    return {"file": file.upper(), "data": _hex(sim().applet(lambda c: c.read_file(file_id)))}


def sim_sign(message=None, hash=None, key="01"):
    """Sign a message (hashed here with SHA-256) or a SHA-256 digest with a private key on the SIM."""
    if (message is None) == (hash is None):
        raise jsonrpc.RpcError(jsonrpc.INVALID_PARAMS, "give exactly one of message or hash")
    if hash is None:
        import hashlib

        digest = hashlib.sha256(_bytes(message, "message")).digest()
    else:
        digest = _bytes(hash, "hash", 32)
    key_id = _bytes(key, "key")
    sig = sim().applet(lambda c: c.sign_hash(key_id, digest))
    return {"key": key.upper(), "alg": "ES256", "hash": _hex(digest), "signature": _hex(sig)}


def sim_random(length=16):
    if not 1 <= length <= 256:
        raise jsonrpc.RpcError(jsonrpc.INVALID_PARAMS, "length must be 1..256")
    return {"random": _hex(sim().applet(lambda c: c.random(length)))}


METHODS = {
    "info": info,
    "sim.info": sim_info,
    "sim.read_file": sim_read_file,
    "sim.sign": sim_sign,
    "sim.random": sim_random,
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
