# JSON-RPC request handling: every malformed request gets an error object, never an exception.
import jsonrpc
import tcp


def _echo(x=1):
    return {"x": x}


def _boom():
    raise ValueError("kaput")


class _CardSays(Exception):  # a firmware exception: its class carries its protocol code, its data the details
    code = -32003

    def __init__(self):
        super().__init__("card says 6A82")
        self.data = {"sw": "6A82"}


def _card():
    raise _CardSays()


def _refused():
    raise tcp.ConnectionRefused("connection refused by 127.0.0.1:9", "127.0.0.1:9")


METHODS = {"echo": _echo, "boom": _boom, "card": _card, "connect": _refused}


def test_ok():
    assert jsonrpc.handle(b'{"jsonrpc":"2.0","id":3,"method":"echo","params":{"x":5}}', METHODS.get) == {
        "jsonrpc": "2.0", "id": 3, "result": {"x": 5}}


def test_errors():
    cases = ((b"{", -32700), (b"[]", -32600), (b'{"jsonrpc":"1.0","id":1,"method":"echo"}', -32600),
             (b'{"jsonrpc":"2.0","id":1,"method":"nope"}', -32601),
             (b'{"jsonrpc":"2.0","id":1,"method":"echo","params":[1]}', -32602),
             (b'{"jsonrpc":"2.0","id":1,"method":"echo","params":{"y":1}}', -32602),
             (b'{"jsonrpc":"2.0","id":1,"method":"boom"}', -32603))
    for line, code in cases:
        assert jsonrpc.handle(line, METHODS.get)["error"]["code"] == code, line


def test_notification_gets_no_answer():
    assert jsonrpc.handle(b'{"jsonrpc":"2.0","method":"echo"}', METHODS.get) is None


def test_exception_classes_carry_their_code_and_data():
    err = jsonrpc.handle(b'{"jsonrpc":"2.0","id":1,"method":"card"}', METHODS.get)["error"]
    assert err == {"code": -32003, "message": "card says 6A82", "data": {"type": "_CardSays", "sw": "6A82"}}
    err = jsonrpc.handle(b'{"jsonrpc":"2.0","id":1,"method":"boom"}', METHODS.get)["error"]
    assert err["data"] == {"type": "ValueError"}


def test_hex_values():
    assert jsonrpc.hex_text(b"\x0a\xbc") == "0ABC"
    assert jsonrpc.hex_param("0abc", "x", 2) == b"\x0a\xbc"
    for bad in ("0g", 12, "0abc00"):
        try:
            jsonrpc.hex_param(bad, "x", 2)
        except jsonrpc.RpcError as e:
            assert e.code == -32602 and str(e).startswith("x must be")
        else:
            raise AssertionError("accepted %r" % bad)


def test_network_errors_keep_their_meaning():
    err = jsonrpc.handle(b'{"jsonrpc":"2.0","id":1,"method":"connect"}', METHODS.get)["error"]
    assert err == {"code": -32021, "message": "connection refused by 127.0.0.1:9",
                   "data": {"type": "ConnectionRefused", "peer": "127.0.0.1:9"}}


def test_oversize_request_keeps_its_id():
    # what the server kept of a line too long to take (its first REQUEST_MAX bytes) shows the id or not
    pad = b'"x":"' + b"A" * 5000
    cases = ((b'{"jsonrpc":"2.0","id":7,"method":"info","params":{' + pad, 7),
             (b'{ "id" : "a,}b\\"c", "jsonrpc":"2.0","params":{' + pad, 'a,}b"c'),
             (b'{"jsonrpc":"2.0","method":"info","params":{"id":9,' + pad, None),  # not the request's id
             (b'{"jsonrpc":"2.0","method":"info","params":{' + pad, None),  # its id comes after the cut
             (b'{"note":"\\"id\\": 5","params":{' + pad, None),  # "id" inside a string
             (b'{"id":true,"params":{' + pad, None), (b'{"id":null,"params":{' + pad, None),
             (b'{"jsonrpc":"2.0","method":"x","params":{' + b"A" * 4048 + b'},"id":12', None))  # cut in the id
    for line, rid in cases:
        kept = bytearray(line[:jsonrpc.REQUEST_MAX])
        assert jsonrpc.cut_id(kept) == rid, line[:40]


def test_a_request_cut_short_is_not_whole():
    # what MicroPython before 1.23 parses anyway ('{"a": 1' as {"a": 1}); whole() is what turns it away there
    whole = (b'{"jsonrpc":"2.0","id":1,"method":"echo","params":{"x":"}{[\\""}}', b"[1, [2], {}]", b'""', b"5")
    cut = (b'{"jsonrpc": "2.0", "id": 1, "method": ', b'{"params": {"x": 1}', b'{"x": "ab', b'{"x": "a\\"}', b"[1, 2")
    for line in whole:
        assert jsonrpc.whole(line), line
    for line in cut:
        assert not jsonrpc.whole(line), line
        assert jsonrpc.handle(line, METHODS.get)["error"]["code"] == -32700, line
