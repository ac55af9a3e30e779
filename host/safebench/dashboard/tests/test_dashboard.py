"""The page's server over HTTP, against a database filled by the ingest's own storing (readings signed as the
firmware signs them, with software keys): its state, each reading's evidence, the live feed and its resumption,
and what it refuses."""

import http.client
import json
import threading

import pytest

from safebench.dashboard import ActionError, Dashboard
from safebench.dashboard.evidence import CHECKS
from safebench.pki import CertificateAuthority
from safebench.readings import Verifier
from safebench.registry import Registry
from safebench.testing.signed_readings import ReadingDevice

EPOCH = 1_780_000_000


@pytest.fixture
def world(tmp_path):
    ca = CertificateAuthority.create()
    registry = Registry.of_state(tmp_path)
    device = ReadingDevice(ca, registry)
    verifier = Verifier(registry, ca.cert)

    def store(*coses):
        return registry.db.store_readings([(device.topic, c, verifier.check(c)) for c in coses])

    yield registry, device, store
    registry.close()


def _get(page, path, headers=None):
    conn = http.client.HTTPConnection(page.host, page.port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    res = conn.getresponse()
    return res.status, res.getheader("Content-Type"), res.read()


def _post(page, body, content_type="application/json"):
    conn = http.client.HTTPConnection(page.host, page.port, timeout=10)
    conn.request("POST", "/api/actions", body=body, headers={"Content-Type": content_type})
    res = conn.getresponse()
    return res.status, json.loads(res.read())


def test_state_and_evidence_of_stored_readings(world):
    registry, device, store = world
    good = device.reading(EPOCH, 1)
    store(good, good[:-1] + bytes([good[-1] ^ 1]), good)  # verified, tampered, replayed
    with Dashboard(registry.db.url) as page:
        status, kind, body = _get(page, "/api/state")
        state = json.loads(body)
        assert status == 200 and kind == "application/json" and state["actions"] == {}
        assert [r["verdict"] for r in state["readings"]] == ["verified", "bad-signature", "replayed"]
        assert state["readings"][0]["device"] == device.ICCID and state["readings"][0]["cose"] == good.hex()
        tampered = json.loads(_get(page, f"/api/readings/{state['readings'][1]['id']}")[2])
        assert tampered["cbor"].startswith("18([h'a10126', {4: h'") and '"seq"' in tampered["payload"]
        assert [c["result"] for c in tampered["checks"]] == ["passed"] * 4 + ["failed"] + ["not run"] * 4
        assert tampered["certificate"]["der"] == device.cert_der.hex()
        assert device.ICCID in tampered["certificate"]["subject"]
        replayed = json.loads(_get(page, f"/api/readings/{state['readings'][2]['id']}")[2])
        assert [c["result"] for c in replayed["checks"]][7] == "failed" and len(replayed["checks"]) == len(CHECKS)
        assert json.loads(_get(page, f"/api/certificates/{device.kid.hex()}")[2])["certificate"]["der"] == \
            device.cert_der.hex()
        assert _get(page, "/api/readings/999")[0] == 404 and _get(page, "/api/certificates/00")[0] == 404
        status, kind, html = _get(page, "/")
        assert status == 200 and kind.startswith("text/html") and b'src="/dashboard.js"' in html
        assert b"http" not in html.replace(b"http://www.w3.org", b"")  # nothing from outside
        assert _get(page, "/dashboard.js")[1].endswith("javascript; charset=utf-8")


def _feed(page, headers=None, until=1):
    """The feed's events (name, id, data) until `until` readings have come."""
    conn = http.client.HTTPConnection(page.host, page.port, timeout=10)
    conn.request("GET", "/api/events", headers=headers or {})
    res = conn.getresponse()
    assert res.getheader("Content-Type") == "text/event-stream"
    events, event = [], {}
    while sum(1 for e in events if e["event"] == "reading") < until:
        line = res.fp.readline().decode().rstrip("\n")
        if not line:
            if event:
                events.append(event)
            event = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            event[key] = json.loads(value) if key == "data" else value
    conn.close()
    return events


def test_the_feed_sends_what_is_stored_and_resumes_after_the_last_event(world):
    registry, device, store = world
    store(device.reading(EPOCH, 1))
    with Dashboard(registry.db.url) as page:
        got = []
        listener = threading.Thread(target=lambda: got.extend(_feed(page, until=2)))
        listener.start()
        threading.Event().wait(0.5)  # the feed starts after what is stored
        store(device.reading(EPOCH, 2), device.reading(EPOCH, 3))
        listener.join(10)
        readings = [e for e in got if e["event"] == "reading"]
        assert [e["data"]["seq"] for e in readings] == [2, 3]
        assert [e["event"] for e in got][0] == "links"
        resumed = _feed(page, {"Last-Event-ID": readings[0]["id"]}, until=1)  # a reconnecting EventSource
        assert [e["data"]["seq"] for e in resumed if e["event"] == "reading"] == [3]


class _Actions:
    def offered(self):
        return {"tamper": True}

    def take(self, request):
        if request.get("action") != "tamper":
            raise ActionError("no such action")
        return {"said": "done"}


def test_what_the_server_refuses(world):
    registry, _, _ = world
    with Dashboard(registry.db.url) as page:
        assert _post(page, "{}") == (409, {"error": "this page only shows: no demonstrator takes actions"})
    with Dashboard(registry.db.url, actions=_Actions()) as page:
        assert _post(page, '{"action": "tamper"}') == (200, {"said": "done"})
        assert _post(page, '{"action": "other"}') == (409, {"error": "no such action"})
        assert _post(page, "action=tamper", "application/x-www-form-urlencoded")[0] == 415  # a form of another origin
        assert _post(page, "[1]")[0] == 400
        assert _get(page, "/api/state", {"Host": "evil.example:80"})[0] == 421  # DNS rebinding
        assert _get(page, "/etc/passwd")[0] == 404 and _get(page, "/../server.py")[0] == 404
