# MQTT 5.0 client (OASIS MQTT Version 5.0, 2019): what a device that publishes needs. CONNECT, PUBLISH
# at QoS 1 (one message in flight, acknowledged before the next), PINGREQ and DISCONNECT, over any stream
# with write(b) and readinto(buf, n), such as a tls13.TLSClient. Nothing is subscribed to.
#
# The broker's answers are read into one preallocated buffer: the CONNECT says how large a packet we take
# (Maximum Packet Size), so a broker that sends more breaks the protocol and is told so.
from micropython import const
from rpc_codes import E_MQTT

_CONNECT = const(0x10)
_CONNACK = const(0x20)
_PUBLISH_QOS1 = const(0x32)
_PUBACK = const(0x40)
_PINGREQ = const(0xC0)
_PINGRESP = const(0xD0)
_DISCONNECT = const(0xE0)
_MAX_IN = const(128)  # bytes: the largest packet we accept (CONNACK with its properties, PUBACK, DISCONNECT)

# Property identifiers (section 2.2.2.2) and the size of their values: 1, 2, 4 bytes, 0 a variable
# byte integer, -1 a two-byte-length string or binary, -2 a string pair.
_SERVER_KEEP_ALIVE = const(0x13)
_MAXIMUM_QOS = const(0x24)
_PROPERTY_SIZES = {0x01: 1, 0x02: 4, 0x03: -1, 0x08: -1, 0x09: -1, 0x0B: 0, 0x11: 4, 0x12: -1, 0x13: 2,
                   0x15: -1, 0x16: -1, 0x17: 1, 0x18: 4, 0x19: 1, 0x1A: -1, 0x1C: -1, 0x1F: -1, 0x21: 2,
                   0x22: 2, 0x23: 2, 0x24: 1, 0x25: 1, 0x26: -2, 0x27: 4, 0x28: 1, 0x29: 1, 0x2A: 1}
# The reason codes a publishing device meets (section 2.4); others are shown by number.
REASONS = {0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error",
           0x84: "unsupported protocol version", 0x85: "client identifier not valid",
           0x86: "bad user name or password", 0x87: "not authorized", 0x88: "server unavailable",
           0x89: "server busy", 0x8A: "banned", 0x8B: "server shutting down", 0x8D: "keep alive timeout",
           0x8E: "session taken over", 0x90: "topic name invalid", 0x95: "packet too large",
           0x97: "quota exceeded", 0x9B: "QoS not supported"}


class MQTTError(Exception):
    """The broker refused a message, or broke the session (`ended`). `reason`: its MQTT reason code, None if
    it gave none. `code` and `data`: how the failure travels in the command protocol."""

    code = E_MQTT

    def __init__(self, reason, text, ended=True):
        super().__init__(text if reason is None else "%s: %s (reason 0x%02x)" % (text, reason_text(reason), reason))
        self.reason = reason
        self.ended = ended
        self.data = {"reason": reason}


def reason_text(code):
    return REASONS.get(code, "reason %d" % code)


def _varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return out


def _text(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    return bytes((len(b) >> 8, len(b) & 0xFF)) + b


class Client:
    """One MQTT session on `stream`. `keepalive`: seconds; the broker may set another (`self.keepalive`)."""

    def __init__(self, stream, client_id, keepalive=60):
        self.stream = stream
        self.client_id = client_id
        self.keepalive = keepalive
        self._rx = bytearray(_MAX_IN)
        self._next_id = 0

    def _send(self, kind, body):
        self.stream.write(bytes((kind,)) + _varint(len(body)) + body)

    def _read(self):
        """(packet type and flags, body as a memoryview into the receive buffer) of the broker's next packet."""
        rx, s = self._rx, self.stream
        if s.readinto(rx, 1) != 1:
            raise MQTTError(None, "the broker closed the connection")
        kind, n, shift = rx[0], 0, 0
        while True:
            if shift > 21 or s.readinto(rx, 1) != 1:
                raise MQTTError(0x81, "bad packet length from the broker")
            n |= (rx[0] & 0x7F) << shift
            shift += 7
            if not rx[0] & 0x80:
                break
        if n > _MAX_IN:
            raise MQTTError(0x95, "the broker sent a %d-byte packet" % n)
        if n and s.readinto(rx, n) != n:
            raise MQTTError(None, "the broker closed the connection inside a packet")
        body = memoryview(rx)[:n]
        if kind == _DISCONNECT:
            raise MQTTError(body[0] if n else 0, "the broker ended the session")
        return kind, body

    def _properties(self, body, i):
        """{identifier: value} of the properties at body[i:]; ints for the numeric ones, bytes for the rest."""
        n, shift = 0, 0
        while True:
            b = body[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        end, props = i + n, {}
        if end > len(body):
            raise MQTTError(0x81, "the broker's properties run past its packet")
        while i < end:
            pid = body[i]
            size = _PROPERTY_SIZES.get(pid)
            i += 1
            if size is None:
                raise MQTTError(0x81, "unknown property 0x%02x from the broker" % pid)
            if size > 0:
                value = int.from_bytes(body[i:i + size], "big")
                i += size
            elif size == 0:
                value = 0
                while True:  # a variable byte integer, read for its length
                    i += 1
                    if not body[i - 1] & 0x80:
                        break
            else:
                for _ in range(-size):
                    i += 2 + ((body[i] << 8) | body[i + 1])
                value = None
            props[pid] = value
        return props

    def connect(self, clean_start=True):
        """CONNECT and its CONNACK; returns whether the broker kept a session for us."""
        flags = 0x02 if clean_start else 0
        props = b"\x05\x27" + _MAX_IN.to_bytes(4, "big")  # Maximum Packet Size
        self._send(_CONNECT, b"\x00\x04MQTT\x05" + bytes((flags, self.keepalive >> 8, self.keepalive & 0xFF))
                   + props + _text(self.client_id))
        kind, body = self._read()
        if kind != _CONNACK or len(body) < 3:
            raise MQTTError(0x82, "the broker answered CONNECT with packet type %d" % (kind >> 4))
        if body[1] >= 0x80:
            raise MQTTError(body[1], "the broker refused the connection")
        props = self._properties(body, 2)
        if props.get(_MAXIMUM_QOS, 1) < 1:
            raise MQTTError(0x9B, "the broker takes no QoS 1 messages")
        self.keepalive = props.get(_SERVER_KEEP_ALIVE, self.keepalive)
        return bool(body[0] & 1)

    def publish(self, topic, payload):
        """PUBLISH at QoS 1 and wait for its PUBACK; returns (packet identifier, reason code)."""
        self._next_id = self._next_id % 0xFFFF + 1
        pid = self._next_id
        self._send(_PUBLISH_QOS1, _text(topic) + bytes((pid >> 8, pid & 0xFF, 0)) + payload)
        kind, body = self._wait(_PUBACK)
        if len(body) < 2 or (body[0] << 8) | body[1] != pid:
            raise MQTTError(0x82, "the broker acknowledged another message than %d" % pid)
        reason = body[2] if len(body) > 2 else 0
        if reason >= 0x80:
            raise MQTTError(reason, "the broker refused the message to %s" % topic, ended=False)
        return pid, reason

    def ping(self):
        self._send(_PINGREQ, b"")
        self._wait(_PINGRESP)

    def _wait(self, want):
        while True:
            kind, body = self._read()
            if kind & 0xF0 == want:
                return kind, body
            if kind & 0xF0 != _PINGRESP:  # a late PINGRESP is harmless; anything else breaks the session
                raise MQTTError(0x82, "unexpected packet type %d from the broker" % (kind >> 4))

    def disconnect(self):
        """DISCONNECT, normal (reason 0): the broker drops the session without sending a will."""
        self._send(_DISCONNECT, b"")
