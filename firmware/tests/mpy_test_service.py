# The method table: handlers are imported on first call; a method of a feature that is not on the board
# answers "not deployed" (METHOD_NOT_FOUND), not an internal error.
import jsonrpc
import service


def test_a_method_is_found_by_module_and_function_name():
    assert service.find("modem.time").__name__ == "modem_time"
    assert service.find("no.such.method") is None


def test_a_method_of_a_feature_not_deployed():
    service.METHODS["demo.missing"] = ("demo", "no_such_handler_module", "handler")
    try:
        err = jsonrpc.handle(b'{"jsonrpc":"2.0","id":7,"method":"demo.missing"}', service.find)["error"]
    finally:
        del service.METHODS["demo.missing"]
    assert err == {"code": -32601, "data": {"feature": "demo"},
                   "message": "method demo.missing needs the demo feature, which is not deployed on this board"}


def test_the_reading_path_loads_neither_sim_handlers_nor_tls():
    import sys

    service.find("reading")
    assert "reading_rpc" in sys.modules
    assert not [m for m in ("sim_rpc", "tls_rpc", "tls13", "simkeys") if m in sys.modules]


def test_a_handler_whose_import_runs_out_of_memory_leaves_nothing_behind():
    import gc

    service.METHODS["demo.oom"] = ("demo", "oom_handler", "handler")
    gc.collect()
    before = gc.mem_free()
    try:
        err = jsonrpc.handle(b'{"jsonrpc":"2.0","id":8,"method":"demo.oom"}', service.find)["error"]
    finally:
        del service.METHODS["demo.oom"]
    assert err == {"code": -32603, "message": "out of memory"}, err
    gc.collect()
    assert before - gc.mem_free() < 50000, before - gc.mem_free()  # the half-made module's 100000 bytes are free
