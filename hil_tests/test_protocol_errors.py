"""Bad requests get a clear JSON-RPC error and the board keeps serving."""

import json
import time

import pytest

from safebench.errors import RpcError
from safebench.rpc_codes import E_CARD, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR


def _raw(device, line: bytes):
    device.send_line(line)
    msg = device.read_message(10)
    assert msg is not None, "no answer"
    return msg


def _still_serving(device):
    assert device.call("info")["firmware"]


def test_malformed_json(device):
    msg = _raw(device, b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert msg["error"]["code"] == PARSE_ERROR
    _still_serving(device)


def test_not_a_request(device):
    msg = _raw(device, b"[1, 2, 3]")
    assert msg["error"]["code"] == INVALID_REQUEST
    _still_serving(device)


def test_oversized_request(device):
    msg = _raw(device, json.dumps({"jsonrpc": "2.0", "id": 7, "method": "info", "params": {"x": "A" * 6000}}).encode())
    assert msg["error"]["code"] == INVALID_REQUEST and msg["id"] == 7  # the id was in the part the board kept
    assert "request too large: longer than 4096 bytes" in msg["error"]["message"]
    _still_serving(device)


def test_oversized_request_through_the_client(device):
    # the answer carries the request's id, so the client reports it at once instead of waiting for its timeout
    t0 = time.monotonic()
    with pytest.raises(RpcError) as e:
        device.call("info", timeout=20, x="A" * 6000)
    assert e.value.code == INVALID_REQUEST and "request too large" in str(e.value)
    assert time.monotonic() - t0 < 10
    _still_serving(device)


def test_unknown_method(device):
    with pytest.raises(RpcError) as e:
        device.call("sim.explode")
    assert e.value.code == METHOD_NOT_FOUND
    _still_serving(device)


@pytest.mark.parametrize("params, needle", [
    ({"hash": "00" * 32}, "bad params"),  # no digests: sim.sign signs messages (behind its context prefix)
    ({"message": "zz"}, "hex"),
    ({}, "give the message"),
    ({"message": "00", "colour": "red"}, "bad params"),
])
def test_bad_sign_params(device, params, needle):
    with pytest.raises(RpcError) as e:
        device.call("sim.sign", **params)
    assert e.value.code == INVALID_PARAMS
    assert needle in str(e.value)
    _still_serving(device)


def test_unknown_file_is_a_card_error(device):
    with pytest.raises(RpcError) as e:
        device.call("sim.read_file", file="7F")
    assert e.value.code == E_CARD
    assert e.value.data["sw"] == "6A82"
    assert "not found" in str(e.value)
    # the channel was closed after the error: signing still works
    assert device.call("sim.sign", message="01")["signature"]
