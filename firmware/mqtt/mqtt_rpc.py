# The `mqtt.*` methods of the command protocol (docs/protocol.md): the board's MQTT 5 session with a
# broker, inside TLS 1.3 with the SIM's keys (tls_rpc), and signed readings published through it at QoS 1.
#
# The session lives on between requests, as a device keeps its broker connection; its modules (the TLS
# client, MQTT) stay loaded while it is open and are unloaded when it closes. Every reading goes through
# the outbox in flash (outbox.py) and leaves it only once the broker acknowledged it, oldest first: while
# the broker or the network is away, readings wait there and a publish answers "queued". A session that
# broke is opened again at once, then with backoff from one publish to the next. A reading no one subscribed
# to (PUBACK 0x10: the ingest is away, or its subscription was lost in a broker restart) would be dropped by
# the broker: it stays in the outbox too, and goes again with the next publish. Delivery is at least once;
# the ingest counts a reading once by its (kid, seq).
import sys
import time

from jsonrpc import RpcError
from micropython import const
from rpc_codes import E_NOT_CONNECTED, INVALID_PARAMS
from tls_rpc import REFUSED_CERTIFICATE, failed, open_tls, sim_keys, tls_options, unload

_NO_SUBSCRIBERS = const(0x10)  # PUBACK reason: accepted, but no one subscribed to the topic
_BACKOFF_MS = (1000, 60000)  # the first wait before a reconnect after a failed one, doubled up to the last
_TOPIC = "safebench/%s/readings"  # %s: the commonName of the SIM's certificate, the broker's user name
_session = None


class _Session:
    def __init__(self, options, keepalive, loaded):
        self.options, self.keepalive, self.loaded = options, keepalive, loaded
        self.conn = self.client = None
        self.topic = self.client_id = None
        self.connects = 0
        self.backoff_ms, self.retry_at = 0, None  # no wait before the next reconnect; when it may be tried

    def open(self):
        """The TLS handshake, CONNECT and CONNACK, as the device the SIM's certificate names now: its client id
        and topic are taken again at each connect, as the SIM may have been swapped since (the broker's ACL
        takes a device's readings only on its own topic)."""
        from sim_session import session
        from tls_record import buffers
        from x509 import Certificate, common_name

        s = session()
        renewal = _renew_if_due(s)
        keys = sim_keys(s)
        self.client_id = common_name(Certificate(keys.certificate()).subject)
        self.topic = _TOPIC % self.client_id
        t0 = time.ticks_ms()
        self.conn = open_tls(keys, s.modem, buffers(), self.options)
        from mqtt5 import Client

        self.client = Client(self.conn, self.client_id, self.keepalive)
        try:
            present = self.client.connect()
        except Exception as e:
            self.drop()
            if getattr(e, "reason", None) is not None or not isinstance(getattr(e, "code", None), int):
                raise  # the broker's own CONNACK refusal says why; a MemoryError, say, is no answer of the broker's
            raise failed(e, REFUSED_CERTIFICATE % e) from None  # closed before a CONNACK: our certificate, most likely
        self.connects += 1
        res = {"session_present": present, "connect_ms": time.ticks_diff(time.ticks_ms(), t0)}
        if renewal:
            res["renewal"] = renewal
        return res

    def drop(self):
        """Close the TLS session and its socket, whatever state they are in."""
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
        self.conn = self.client = None

    def report(self):
        info = self.conn.info
        return {"topic": self.topic, "client_id": self.client_id, "keepalive": self.client.keepalive,
                "version": info["version"], "cipher": info.get("cipher"), "server_subject": info.get("server_subject")}


def _renew_if_due(s):
    """The enrolment feature's renewal (enrolment_rpc.renew_if_due) before the device goes online; None on a board
    without that feature."""
    try:
        from enrolment_rpc import renew_if_due
    except ImportError:
        return None
    return renew_if_due(s)


def mqtt_connect(host, port, keepalive=60, **tls_params):
    """Open the board's MQTT session (closing one already open) and send what the outbox holds; `tls_params`:
    those of tls_rpc.tls_options."""
    global _session
    if not isinstance(keepalive, int) or not 0 < keepalive <= 65535:
        raise RpcError(INVALID_PARAMS, "keepalive must be 1..65535 seconds")
    options = tls_options(host, port, **tls_params)
    mqtt_close()
    loaded = set(sys.modules)
    session = _Session(options, keepalive, loaded)
    try:
        res = session.open()
    except BaseException:
        unload(loaded)
        raise
    _session = session
    res.update(session.report())
    res.update(_flush(session, _outbox()))
    return res


def mqtt_publish(topic=None):
    """Take a signed reading, queue it in the outbox, and send the outbox at QoS 1 to this device's topic
    (or `topic`), oldest first; answers with what the broker acknowledged and what still waits."""
    s = _open_session()
    if topic is not None and (not isinstance(topic, str) or not topic or any(c in topic for c in "+#\n\x00")):
        raise RpcError(INVALID_PARAMS, "topic must be a topic name (no wildcards, newlines or NULs)")
    from reading_rpc import take

    box = _outbox()
    reported = box.dropped
    r, cose = take(reported)
    name = box.add(r["epoch"], r["seq"], topic or "", cose, reported)  # "": the device's topic when it is sent
    r.update(_flush(s, box, name))
    r.update(topic=topic or s.topic, dropped=reported)
    return r


def _flush(s, box, mine=None):
    """Send the outbox, oldest first, each reading removed once the broker took it. {"sent": how many,
    "queued": how many still wait, "reconnects", and "error" when the link is down}; `mine`: the queued
    name of this request's reading, whose fate is "published" (and its "packet_id" and PUBACK "reason")."""
    out = {"sent": 0, "queued": 0, "reconnects": 0}
    if mine is not None:
        out["published"] = False
    from outbox import Tampered

    for name in box.names():
        try:
            topic, cose = box.read(name)  # "": the device's own topic, s.topic once _send has the session open
        except Tampered as e:
            box.drop(name)
            out["tampered"] = out.get("tampered", 0) + 1
            out["warning"] = str(e)
            continue
        try:
            packet_id, reason = _send(s, topic, cose, out)
        except _LinkDown as e:
            out["queued"], out["error"] = len(box), str(e)
            return out
        except Exception as e:
            if getattr(e, "ended", True):
                raise  # not the broker's answer (out of memory, say): the reading stays queued
            box.remove(name)  # the broker refused this reading: sending it again would not help
            raise failed(e, "%s; reading %s taken off the outbox" % (e, name[:-5])) from None
        if reason == _NO_SUBSCRIBERS:  # the broker would drop it: kept, and sent again with the next publish
            out["queued"] = len(box)
            out["error"] = "no one subscribed to %s took it (PUBACK 0x10)" % (topic or s.topic)
            return out
        box.remove(name)
        out["sent"] += 1
        if name == mine:
            out.update(published=True, packet_id=packet_id, reason=reason)
    return out


class _LinkDown(Exception):
    """The session is broken and cannot be opened again now."""


def _send(s, topic, cose, out):
    """(packet id, reason) of a publish on the session `s`, opened again first if it broke; _LinkDown when it
    cannot be: the backoff before the next try has not run out, or a reconnect failed (which doubles it)."""
    opened = False
    while True:
        if s.client is None:
            wait = time.ticks_diff(s.retry_at, time.ticks_ms()) if s.retry_at is not None else 0
            if wait > 0:
                raise _LinkDown("the broker is unreachable; the next reconnect in %d ms" % wait)
            try:
                s.open()
            except Exception as e:
                if not _broke(e):
                    raise
                _back_off(s)
                raise _LinkDown(str(e)) from None
            out["reconnects"] += 1
            opened = True
        try:
            res = s.client.publish(topic or s.topic, cose)
        except Exception as e:
            if not _broke(e):
                raise
            s.drop()
            if opened:
                _back_off(s)
                raise _LinkDown(str(e)) from None
            continue  # the session broke since its last use: open it again at once
        s.backoff_ms, s.retry_at = 0, None
        return res


def _back_off(s):
    s.backoff_ms = min(max(2 * s.backoff_ms, _BACKOFF_MS[0]), _BACKOFF_MS[1])
    s.retry_at = time.ticks_add(time.ticks_ms(), s.backoff_ms)


def _outbox():
    import flash_seal
    from outbox import Outbox
    from sim_session import session

    s = session()
    return Outbox(seal=lambda: flash_seal.key(s))


def _broke(e):
    """Whether `e` ended the session: the broker did (MQTTError.ended), or the network, TLS or the SIM failed
    (the firmware's errors with a protocol code)."""
    return getattr(e, "ended", isinstance(getattr(e, "code", None), int) or isinstance(e, OSError))


def mqtt_ping():
    """PINGREQ and PINGRESP: keeps the session alive between readings; the round trip in ms."""
    s = _open_session()
    if s.client is None:
        s.open()
    t0 = time.ticks_ms()
    s.client.ping()
    return {"rtt_ms": time.ticks_diff(time.ticks_ms(), t0)}


def mqtt_close():
    """DISCONNECT, TLS close_notify, the socket closed, the session's modules unloaded (`closed` false if none
    was open); `queued`: the readings still in the outbox."""
    global _session
    s, _session = _session, None
    if s is None:
        return {"closed": False}
    try:
        if s.client is not None:
            s.client.disconnect()
    except Exception:
        pass  # the session is going anyway
    s.drop()
    queued = len(_outbox())
    unload(s.loaded)
    return {"closed": True, "connects": s.connects, "queued": queued}


def _open_session():
    if _session is None:
        raise RpcError(E_NOT_CONNECTED, "no MQTT session on the board: mqtt.connect first")
    return _session
