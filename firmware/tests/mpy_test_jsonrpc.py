# JSON-RPC request handling: every malformed request gets an error object, never an exception.
import jsonrpc


def _echo(x=1):
    return {"x": x}


def _boom():
    raise ValueError("kaput")


METHODS = {"echo": _echo, "boom": _boom}


def test_ok():
    assert jsonrpc.handle(b'{"jsonrpc":"2.0","id":3,"method":"echo","params":{"x":5}}', METHODS) == {
        "jsonrpc": "2.0", "id": 3, "result": {"x": 5}}


def test_errors():
    cases = ((b"{", -32700), (b"[]", -32600), (b'{"jsonrpc":"1.0","id":1,"method":"echo"}', -32600),
             (b'{"jsonrpc":"2.0","id":1,"method":"nope"}', -32601),
             (b'{"jsonrpc":"2.0","id":1,"method":"echo","params":[1]}', -32602),
             (b'{"jsonrpc":"2.0","id":1,"method":"echo","params":{"y":1}}', -32602),
             (b'{"jsonrpc":"2.0","id":1,"method":"boom"}', -32603))
    for line, code in cases:
        assert jsonrpc.handle(line, METHODS)["error"]["code"] == code, line


def test_notification_gets_no_answer():
    assert jsonrpc.handle(b'{"jsonrpc":"2.0","method":"echo"}', METHODS) is None
