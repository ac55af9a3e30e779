# The MQTT 5 client's packets against bytes written out from the OASIS MQTT 5.0 standard (sections 3.1-3.14),
# and what it does with a broker that refuses, breaks the protocol or goes away.
from expect import raises
from mqtt5 import Client, MQTTError


class Stream:
    """A broker's side of the stream: what it will answer, and what the client wrote."""

    def __init__(self, answer=b""):
        self.answer = bytearray(answer)
        self.written = bytearray()

    def write(self, b):
        self.written += b
        return len(b)

    def readinto(self, buf, n):
        k = min(n, len(self.answer))
        buf[:k] = self.answer[:k]
        self.answer = self.answer[k:]
        return k


CONNACK = b"\x20\x03\x00\x00\x00"  # no session present, success, no properties
PUBACK_1 = b"\x40\x02\x00\x01"  # packet 1, success (the reason code left out, 3.4.2.1)


def test_connect_packet():
    s = Stream(CONNACK)
    assert Client(s, "8988", keepalive=60).connect() is False
    # fixed header, protocol name "MQTT", version 5, clean start, keep alive 60, properties (Maximum Packet
    # Size 128), client identifier
    assert bytes(s.written) == (b"\x10\x16\x00\x04MQTT\x05\x02\x00\x3c\x05\x27\x00\x00\x00\x80"
                                b"\x00\x048988")


def test_connack_properties():
    # session present; Server Keep Alive 30 (0x13), an Assigned Client Identifier (0x12), Topic Alias
    # Maximum (0x22), a User Property (0x26, a string pair): read past, the keep alive taken
    props = b"\x13\x00\x1e" + b"\x12\x00\x02id" + b"\x22\x00\x0a" + b"\x26\x00\x01k\x00\x01v"
    s = Stream(b"\x20" + bytes((3 + len(props),)) + b"\x01\x00" + bytes((len(props),)) + props)
    c = Client(s, "8988", keepalive=120)
    assert c.connect() is True and c.keepalive == 30


def test_connect_refused():
    e = raises(MQTTError, Client(Stream(b"\x20\x03\x00\x87\x00"), "x").connect)
    assert e.reason == 0x87 and "not authorized" in str(e) and e.data == {"reason": 0x87}
    e = raises(MQTTError, Client(Stream(b"\x20\x03\x00\xa0\x00"), "x").connect)
    assert "reason 160" in str(e)  # a code without a name is shown by number


def test_no_qos1_broker():
    e = raises(MQTTError, Client(Stream(b"\x20\x05\x00\x00\x02\x24\x00"), "x").connect)
    assert e.reason == 0x9B


def test_publish_packet_and_puback():
    s = Stream(PUBACK_1 + b"\x40\x04\x00\x02\x10\x00")  # packet 2: no matching subscribers, still a success
    c = Client(s, "x")
    assert c.publish("a/b", b"\xd2\x84") == (1, 0)
    assert bytes(s.written) == b"\x32\x0a\x00\x03a/b\x00\x01\x00\xd2\x84"
    assert c.publish("a/b", b"") == (2, 0x10)


def test_publish_refused_keeps_the_session():
    s = Stream(b"\x40\x03\x00\x01\x87")
    e = raises(MQTTError, Client(s, "x").publish, "other/topic", b"r")
    assert e.reason == 0x87 and not e.ended and "other/topic" in str(e)


def test_a_puback_for_another_packet():
    e = raises(MQTTError, Client(Stream(b"\x40\x02\x00\x09"), "x").publish, "t", b"r")
    assert e.reason == 0x82 and e.ended


def test_late_pingresp_is_skipped():
    s = Stream(b"\xd0\x00" + PUBACK_1)
    assert Client(s, "x").publish("t", b"r") == (1, 0)


def test_ping():
    s = Stream(b"\xd0\x00")
    Client(s, "x").ping()
    assert bytes(s.written) == b"\xc0\x00"


def test_broker_disconnects():
    e = raises(MQTTError, Client(Stream(b"\xe0\x01\x8b"), "x").publish, "t", b"r")
    assert e.reason == 0x8B and e.ended and "server shutting down" in str(e)


def test_stream_ends():
    e = raises(MQTTError, Client(Stream(b""), "x").ping)
    assert e.reason is None and e.ended and "closed" in str(e)
    e = raises(MQTTError, Client(Stream(b"\x40\x02\x00"), "x").publish, "t", b"r")
    assert "inside a packet" in str(e)


def test_oversize_and_malformed_lengths():
    e = raises(MQTTError, Client(Stream(b"\x40\x81\x01"), "x").ping)  # 129 bytes: more than we said we take
    assert e.reason == 0x95
    e = raises(MQTTError, Client(Stream(b"\x40\xff\xff\xff\xff\x01"), "x").ping)  # a length of five bytes
    assert e.reason == 0x81
    e = raises(MQTTError, Client(Stream(b"\x20\x03\x00\x00\x09"), "x").connect)  # properties past the packet
    assert e.reason == 0x81
    e = raises(MQTTError, Client(Stream(b"\x20\x04\x00\x00\x01\x7f"), "x").connect)  # no such property
    assert e.reason == 0x81


def test_disconnect():
    s = Stream()
    Client(s, "x").disconnect()
    assert bytes(s.written) == b"\xe0\x00"


def test_packet_identifiers_wrap():
    c = Client(Stream(), "x")
    c._next_id = 0xFFFF
    c.stream.answer += PUBACK_1
    assert c.publish("t", b"")[0] == 1  # never 0 (2.2.1)
