# TEST ONLY: runs the TLS 1.3 client on the unix port against a host server, keys from softkeys.
# Usage: micropython tls_client_cli.py CONFIG.json   (written by host/safebench/tests/test_tls_unix_port.py)
# Prints one JSON line: the negotiated parameters, what came back, time and memory; or the error.
import gc
import json
import socket
import sys
import time
from binascii import hexlify, unhexlify

cfg = json.load(open(sys.argv[1]))
gc.collect()
heap_before = gc.mem_alloc()

import tls13  # noqa: E402  (imported after the baseline so the module itself is measured)
from softkeys import SoftKeys  # noqa: E402

now = tuple(cfg["now"]) if cfg.get("now") else None
keys = SoftKeys(unhexlify(cfg["cert"]), int(cfg["key"], 16), unhexlify(cfg["ca"]), now)
opts = {}
if cfg.get("suites"):
    opts["suites"] = [int(s, 16) for s in cfg["suites"]]
for name in ("verify_on_sim", "share_in_first_hello", "record_limit"):
    if name in cfg:
        opts[name] = cfg[name]
if cfg.get("anchor"):
    opts["trust_anchor"] = unhexlify(cfg["anchor"])
low = [gc.mem_free()]


def probe():  # live heap (after a collection) at every handshake record and SIM call
    gc.collect()
    low[0] = min(low[0], gc.mem_free())


opts["probe"] = probe

gc.collect()
free_before = gc.mem_free()
sock = socket.socket()
sock.connect(socket.getaddrinfo(cfg["host"], cfg["port"])[0][-1])
t0 = time.ticks_ms()
try:
    conn = tls13.wrap(sock, keys, cfg["server_name"], **opts)
except tls13.TLSError as e:
    print(json.dumps({"error": str(e), "alert": e.alert, "remote": e.remote, "sim_calls": keys.calls}))
    sys.exit(0)
handshake_ms = time.ticks_diff(time.ticks_ms(), t0)
gc.collect()
heap_after_handshake = gc.mem_alloc() - heap_before
result = dict(conn.info)
try:
    if cfg.get("stream"):  # the socket-like API as umqtt.simple and HTTP clients use it
        conn.setblocking(False)
        result["nothing_yet"] = conn.read(1)  # None: no data and no blocking
        conn.setblocking(True)
        data = unhexlify(cfg["data"])
        conn.write(data + b"ignored", len(data))
        head = conn.read(5)
        reply = head + conn.readline()
        result["rest"] = hexlify(conn.read()).decode()  # to close_notify
        result["after_end"] = hexlify(conn.read(4)).decode()
    else:
        conn.write(unhexlify(cfg["data"]))
        reply = conn.readline()
    result["received"] = hexlify(reply).decode()
except tls13.TLSError as e:
    result["error"] = str(e)
    result["alert"] = e.alert
conn.close()
result["handshake_ms"] = handshake_ms
result["total_ms"] = time.ticks_diff(time.ticks_ms(), t0)
result["heap_after_handshake"] = heap_after_handshake
result["heap_used_max"] = free_before - low[0]  # sampled high-water of live data during the handshake
result["sim_calls"] = keys.calls
result["wiped"] = conn.records.reader is None and conn.records.writer is None
print(json.dumps(result))
