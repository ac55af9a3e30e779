# The firmware's command protocol: the table of JSON-RPC methods served on the board's USB serial
# (docs/protocol.md), and the loop that serves them.
#
# Each method names its feature, module and function; the module is imported on the method's first call,
# so a request loads only its own handlers (the reading path never loads TLS), core imports no feature,
# and a method whose feature was not deployed on this board says so.
import sys

import jsonrpc
from rpc_codes import METHOD_NOT_FOUND

VERSION = "0.3.0"

METHODS = {
    "info": ("core", "service", "info"),
    "identity": ("core", "identity_rpc", "identity"),
    "enroll": ("enrolment", "enrolment_rpc", "enroll"),
    "sim.info": ("core", "sim_rpc", "sim_info"),
    "sim.roles": ("core", "sim_rpc", "sim_roles"),
    "sim.read_file": ("core", "sim_rpc", "sim_read_file"),
    "sim.sign": ("core", "sim_rpc", "sim_sign"),
    "sim.verify": ("core", "sim_rpc", "sim_verify"),
    "sim.random": ("core", "sim_rpc", "sim_random"),
    "sim.keygen": ("core", "sim_rpc", "sim_keygen"),
    "sim.read_pubkey": ("core", "sim_rpc", "sim_read_pubkey"),
    "sim.apdu": ("core", "sim_rpc", "sim_apdu"),
    "binding.status": ("core", "binding_rpc", "status"),
    "bind": ("core", "binding_rpc", "bind"),
    "modem.status": ("core", "modem_rpc", "modem_status"),
    "modem.time": ("core", "modem_rpc", "modem_time"),
    "modem.tcp_echo": ("core", "modem_rpc", "modem_tcp_echo"),
    "reading": ("readings", "reading_rpc", "reading"),
    "tls.echo": ("tls", "tls_rpc", "tls_echo"),
    "mqtt.connect": ("mqtt", "mqtt_rpc", "mqtt_connect"),
    "mqtt.publish": ("mqtt", "mqtt_rpc", "mqtt_publish"),
    "mqtt.ping": ("mqtt", "mqtt_rpc", "mqtt_ping"),
    "mqtt.close": ("mqtt", "mqtt_rpc", "mqtt_close"),
}


def find(method):
    """The function answering `method`, None if there is no such method."""
    entry = METHODS.get(method)
    if entry is None:
        return None
    feature, module, function = entry
    try:
        handlers = __import__(module)
    except ImportError:
        raise jsonrpc.RpcError(METHOD_NOT_FOUND, "method %s needs the %s feature, which is not deployed on this"
                               " board" % (method, feature), {"feature": feature}) from None
    return getattr(handlers, function)


def info():
    import gc

    import board

    gc.collect()
    return {"firmware": VERSION, "board": board.NAME, "board_id": board_id(), "platform": sys.platform,
            "micropython": ".".join(str(v) for v in sys.implementation.version[:3]),
            "mpy": getattr(sys.implementation, "_mpy", 0) & 0xFF, "mem_free": gc.mem_free()}


def board_id():
    """The MCU's unique ID in hex (machine.unique_id(): the RP2040's flash ID, the ESP32's MAC): the board a
    SIM is bound to, and the one every reading names."""
    import machine

    return jsonrpc.hex_text(machine.unique_id())


def main():
    import board

    jsonrpc.notify("ready", {"firmware": VERSION, "board": board.NAME})
    jsonrpc.serve(find)
