"""Talking to the firmware's JSON-RPC protocol on a board's serial port (docs/protocol.md).

`Device.connect()` is the strategy that gets a board from whatever state it is in (running the
firmware, at the REPL, in the raw REPL after mpremote) to "firmware ready", rebooting it only when
it does not already answer.
"""

import collections
import itertools
import json
import logging
import time

import serial

from . import rpc_codes
from .errors import (
    BindingError,
    BoardEnrolmentError,
    ConnectionRefused,
    ConnectionReset,
    DeviceError,
    HostNotFound,
    NetworkError,
    NetworkTimeout,
    RpcError,
    SimReplaced,
    StoreError,
)

READY = "ready"
ERRORS = {rpc_codes.E_NETWORK: NetworkError, rpc_codes.E_CONNECTION_REFUSED: ConnectionRefused,
          rpc_codes.E_CONNECTION_RESET: ConnectionReset, rpc_codes.E_HOST_NOT_FOUND: HostNotFound,
          rpc_codes.E_NETWORK_TIMEOUT: NetworkTimeout, rpc_codes.E_SIM_REPLACED: SimReplaced,
          rpc_codes.E_BINDING: BindingError, rpc_codes.E_STORE: StoreError,
          rpc_codes.E_ENROLMENT: BoardEnrolmentError}  # error codes with an exception of their own
log = logging.getLogger(__name__)  # -v: every line to and from the board, at debug level


class Device:
    def __init__(self, port, timeout=30.0, baudrate=115200):
        self.port = port
        self.timeout = timeout
        try:
            # A URL (rfc2217://HOST:PORT, a lab's board: docs/lab.md) is a port on the network.
            self.serial = (serial.serial_for_url(port, baudrate=baudrate, timeout=0.05) if "://" in port
                           else serial.Serial(port, baudrate, timeout=0.05))
        except serial.SerialException as e:
            raise DeviceError(f"cannot open {port}: {e}") from None
        self.log = collections.deque(maxlen=200)  # the last lines the board printed, for error reports
        self._ids = itertools.count(1)
        self._pending = b""
        self.ready = None

    def close(self):
        self.serial.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def connect(self, reboot=False):
        """Make sure the firmware is serving; returns its `info`."""
        if not reboot:
            try:
                return self.call("info", timeout=1.0)
            except (DeviceError, RpcError):
                pass
        self.reboot()
        return self.call("info")

    def reboot(self):
        """Interrupt whatever runs, leave the raw REPL, soft-reboot, and wait for the ready line."""
        log.debug("%s: rebooting into the firmware (Ctrl-C, Ctrl-B, Ctrl-D)", self.port)
        self.serial.write(b"\r\x03\x03")
        time.sleep(0.1)
        self.serial.write(b"\x02")
        time.sleep(0.1)
        self.serial.reset_input_buffer()
        self._pending = b""
        self.serial.write(b"\x04")
        self.ready = self._wait(lambda msg: msg.get("method") == READY, self.timeout, "the firmware's ready line")
        return self.ready["params"]

    def call(self, method, timeout=None, **params):
        rid = next(self._ids)
        req = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params:
            req["params"] = params
        self.send_line(json.dumps(req).encode())
        # A REPL echoes what it is sent: only a message with a result or an error is an answer.
        reply = self._wait(lambda msg: msg.get("id") == rid and ("result" in msg or "error" in msg),
                           timeout or self.timeout, f"an answer to {method}")
        if "error" in reply:
            raise ERRORS.get(reply["error"].get("code"), RpcError)(method, reply["error"])
        return reply["result"]

    def send_line(self, line: bytes):
        log.debug("%s < %r", self.port, line)
        self.serial.write(line + b"\n")

    def read_message(self, timeout):
        """The next JSON object the board prints, or None after `timeout` s; other lines go to the log."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._readline(deadline)
            if line is None:
                return None
            self.log.append(line)
            log.debug("%s > %r", self.port, line)
            if line.startswith(b"{"):
                try:
                    return json.loads(line)
                except ValueError:
                    continue

    def _wait(self, wanted, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            msg = self.read_message(max(0.0, deadline - time.monotonic()))
            if msg is None:
                tail = " | ".join(x.decode(errors="replace") for x in list(self.log)[-3:])
                raise DeviceError(f"no {what} from {self.port} within {timeout:.0f} s"
                                  + (f"; last output: {tail}" if tail else ""))
            if wanted(msg):
                return msg

    def _readline(self, deadline):
        while b"\n" not in self._pending:
            if time.monotonic() > deadline:
                return None
            try:
                self._pending += self.serial.read(self.serial.in_waiting or 1)
            except serial.SerialException as e:
                raise DeviceError(f"lost {self.port}: {e}") from None
        line, _, self._pending = self._pending.partition(b"\n")
        return line.rstrip(b"\r")
