# JSON-RPC 2.0 server: one JSON object per line on the board's USB serial (stdin/stdout).
#
# A request line is read into one preallocated buffer; an over-long line is skipped to its end and
# answered with an error (with the request's id when the kept part shows it), so no input can grow
# the heap or stop the loop. Binary values travel as upper-case hex strings (`hex_text`, `hex_param`).
import gc
import json
import sys
from binascii import hexlify, unhexlify

from micropython import const
from rpc_codes import INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR

REQUEST_MAX = const(4096)


class RpcError(Exception):
    """Raised by a method to answer with a specific JSON-RPC error."""

    def __init__(self, code, message, data=None):
        super().__init__(message)
        self.code = code
        self.data = data


def hex_text(b):
    """Bytes as the protocol writes them: an upper-case hex string."""
    return hexlify(b).decode().upper()


def hex_param(value, name, size=None):
    """The bytes of a hex string parameter (of `size` bytes if given); INVALID_PARAMS if it is not one."""
    try:
        b = unhexlify(value)
    except (ValueError, TypeError):
        raise RpcError(INVALID_PARAMS, "%s must be a hex string" % name) from None
    if size is not None and len(b) != size:
        raise RpcError(INVALID_PARAMS, "%s must be %d bytes" % (name, size))
    return b


def send(obj):
    sys.stdout.write(json.dumps(obj))
    sys.stdout.write("\n")


def notify(method, params):
    send({"jsonrpc": "2.0", "method": method, "params": params})


def serve(find):
    """Answer requests for ever. `find(method)` gives the function answering a method, None if none does."""
    stdin = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin
    buf = bytearray(REQUEST_MAX)
    one = bytearray(1)
    reply = None
    while True:
        n = _readline(stdin, buf, one)
        if n == 0:
            continue
        if n < 0:
            send(_error(cut_id(buf), INVALID_REQUEST, "request too large: longer than %d bytes" % REQUEST_MAX))
            continue
        try:
            reply = handle(bytes(buf[:n]), find)
            if reply is not None:
                send(reply)
            reply = None  # an answer (a certificate, a TLS report) is not kept until the next request
        except MemoryError:  # even the answer did not fit: say so in a few bytes, and keep serving
            rid = reply.get("id") if isinstance(reply, dict) else None
            reply = None
            gc.collect()
            send(_error(rid, INTERNAL_ERROR, "out of memory"))


def _readline(stream, buf, one):
    """Bytes of the next line in `buf`, 0 for a blank line, -1 if it did not fit."""
    n = 0
    while True:
        if not stream.readinto(one):
            continue
        c = one[0]
        if c == 10 or c == 13:
            return -1 if n > len(buf) else min(n, len(buf))
        if n < len(buf):
            buf[n] = c
        n += 1


def cut_id(line):
    """The id of a request cut short (its first bytes), if they show it whole: the value of the key "id" of
    the outer object (JSON-RPC ids are numbers, strings or null); None when they do not."""
    depth, i, n = 0, 0, len(line)
    while i < n:
        c = line[i]
        if c == 34:  # '"': a string; at depth 1, the key "id" is followed by the id
            j = _string_end(line, i, n)
            if depth == 1 and line[i + 1:j] == b"id":
                i = j + 1
                while i < n and line[i] in b" \t\r\n:":
                    i += 1
                j = _string_end(line, i, n) + 1 if i < n and line[i] == 34 else i
                while j < n and line[j] not in b",} \t\r\n":
                    j += 1
                if j >= n:  # the value may go on past what was kept
                    return None
                try:
                    value = json.loads(line[i:j])
                except ValueError:
                    return None
                return value if isinstance(value, (int, str)) and not isinstance(value, bool) else None
            i = j
        elif c == 123 or c == 91:  # { [
            depth += 1
        elif c == 125 or c == 93:  # } ]
            depth -= 1
        i += 1
    return None


def whole(line):
    """True when each string, object and array `line` opens is closed again by its end."""
    depth, i, n = 0, 0, len(line)
    while i < n:
        c = line[i]
        if c == 34:  # '"'
            i = _string_end(line, i, n)
            if i == n:
                return False
        elif c == 123 or c == 91:  # { [
            depth += 1
        elif c == 125 or c == 93:  # } ]
            depth -= 1
        i += 1
    return depth == 0


def _cut_short_parses():
    try:
        json.loads("[0")
    except ValueError:
        return False
    return True


# MicroPython before 1.23 parses a line cut short as the object its first bytes make ('{"id": 1, "method": "sim.sign",
# "params": {"mess' gives {"id": 1, "method": "sim.sign", "params": {}}): there, a request must be whole too.
_CUT_SHORT_PARSES = _cut_short_parses()


def _string_end(line, i, n):
    """Index of the quote closing the string that opens at `i` (n if the line ends first)."""
    i += 1
    while i < n and line[i] != 34:
        i += 2 if line[i] == 92 else 1  # a backslash escapes the next byte
    return min(i, n)


def error_of(e):
    """(code, data) the exception `e` travels with: its class's `code` (rpc_codes; else INTERNAL_ERROR), and its
    `data` with `type` naming it."""
    code = getattr(e, "code", None)
    data = {"type": type(e).__name__}
    data.update(getattr(e, "data", None) or {})
    return code if isinstance(code, int) else INTERNAL_ERROR, data


def handle(line, find):
    """The answer to one request line (None for a notification). A method's exception becomes an error
    object: its class's `code` (rpc_codes) and `data` if it has them, else INTERNAL_ERROR; `type` names it."""
    try:
        req = json.loads(line)
        if _CUT_SHORT_PARSES and not whole(line):
            raise ValueError
    except ValueError:
        return _error(None, PARSE_ERROR, "not valid JSON")
    if not isinstance(req, dict) or req.get("jsonrpc") != "2.0" or not isinstance(req.get("method"), str):
        return _error(req.get("id") if isinstance(req, dict) else None, INVALID_REQUEST,
                      "expected a JSON-RPC 2.0 request object")
    rid = req.get("id")
    params = req.get("params") or {}
    try:
        fn = find(req["method"])  # may import the method's module: inside the try, so its errors are answered
        if fn is None:
            raise RpcError(METHOD_NOT_FOUND, "unknown method %s" % req["method"])
        if not isinstance(params, dict):
            raise RpcError(INVALID_PARAMS, "params must be an object")
        result = fn(**params)
    except RpcError as e:
        return _error(rid, e.code, str(e), e.data)
    except TypeError as e:
        return _error(rid, INVALID_PARAMS, "bad params: %s" % e)
    except MemoryError:  # a handler's import, its lazy ones included, may have run out of memory halfway
        release_failed_imports()
        return _error(rid, INTERNAL_ERROR, "out of memory")
    except Exception as e:
        code, data = error_of(e)
        return _error(rid, code, str(e) or type(e).__name__, data)
    if "id" not in req:
        return None  # a notification gets no answer
    return {"jsonrpc": "2.0", "id": rid, "result": result}


def release_failed_imports():
    """Let the half-made modules of imports that ran out of memory go. MicroPython takes such a module out of
    sys.modules but leaves its table slot pointing at it, which keeps it, and all it allocated, alive until
    the slot is reused: storing the names of the module files on the import path that are not loaded, then
    deleting them again, lets them go. Best effort: a full heap may leave no room for the names."""
    import os

    stored = []
    try:
        for folder in sys.path:
            try:
                entries = os.ilistdir(folder or ".")
            except OSError:
                continue  # a folder that is not there (".frozen" on most boards)
            for entry in entries:
                file = entry[0]
                dot = file.rfind(".")
                name = file[:dot]
                if dot > 0 and file[dot:] in (".py", ".mpy") and name not in sys.modules:
                    sys.modules[name] = None
                    stored.append(name)
    except MemoryError:
        pass
    for name in stored:
        del sys.modules[name]


def _error(rid, code, message, data=None):
    err = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": rid, "error": err}
