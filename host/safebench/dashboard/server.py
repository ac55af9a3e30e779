"""The demonstrator page's server: one page, its live feed (Server-Sent Events) from the ingest's database, the
evidence of each reading, and the actions a demonstrator offers (tamper, replay, faults on simulated boards).

    GET  /                      the page (static/: no build step, nothing from outside)
    GET  /api/state             the last readings, the boards' links, the actions on offer
    GET  /api/events            text/event-stream: `reading` (each row as it is stored, `id:` its row id, so a
                                reconnecting EventSource resumes after it) and `links`, a comment every 10 s
    GET  /api/readings/ID       the evidence of one reading
    GET  /api/certificates/KID  the registered certificate of a kid (hex DER, subject, issuer)
    POST /api/actions           {"action": ..., "reading": ID | "device": ICCID} (application/json only)

It listens on 127.0.0.1 by default, answers only requests addressed to it by that name (no DNS rebinding),
and takes actions only as JSON, which a page of another origin cannot send without a preflight it does not
get. The database is read, never written: the ingest writes it.
"""

import json
import mimetypes
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlparse

from ..database import open_database
from ..errors import ActionError, DashboardError, DatabaseError
from ..threaded_server import ThreadedServer
from .evidence import certificate_info, evidence, summary

LAST = 200  # readings the page starts with
POLL_S = 0.25  # how often a live feed looks for new rows
HEARTBEAT_S = 10.0
STATIC = ("index.html", "dashboard.js", "dashboard.css")


class Dashboard(ThreadedServer):
    """The page for the database at `db_url`, on http://HOST:PORT/ (a free port by default). `actions`: the
    demonstrator's (an object with `offered()` -> dict and `take(request)` -> dict), or None for a page that
    only shows. A context manager: serving in a thread of its own from `start()` until `stop()`."""

    thread_name = "dashboard"

    def __init__(self, db_url, port=0, host="127.0.0.1", actions=None):
        self.db_url, self.actions = db_url, actions
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # the shared connection, for the short requests
        try:
            self._server = ThreadingHTTPServer((host, port), _handler(self))
        except OSError as e:
            raise DashboardError(f"the page cannot listen on {host}:{port}: {e.strerror or e}: give --port another "
                                 "port (0: a free one)") from None
        self._db = open_database(db_url)
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[:2]

    @property
    def url(self):
        return f"http://{self.host}:{self.port}/"

    @property
    def database(self) -> str:
        """The database's URL (its password left out)."""
        return self._db.url

    def stop(self):
        self._stopping.set()  # the live feeds end first
        super().stop()
        self._db.close()

    # ---- what the requests read -------------------------------------------------------------------------------

    def state(self):
        with self._lock:
            rows, links = self._db.readings(last=LAST), device_links(self._db)
        return {"readings": [summary(r) for r in rows], "links": links,
                "actions": self.actions.offered() if self.actions else {}}

    def evidence(self, reading_id):
        with self._lock:
            rows = self._db.readings("id = ?", (reading_id,))
            kid = rows[0]["kid"] if rows else None
            cert = self._db.devices(kid).get(kid, {}).get("certificate") if kid else None
        return evidence(rows[0], bytes.fromhex(cert) if cert else None) if rows else None

    def certificate(self, kid):
        with self._lock:
            cert = self._db.devices(kid).get(kid, {}).get("certificate")
        return certificate_info(bytes.fromhex(cert)) if cert else None

    def feed(self, after, send):
        """Send `reading` events for rows after `after`, and `links` when they change, until stopped or the
        client is gone (`send` raises OSError)."""
        db = open_database(self.db_url)  # a connection of its own: the feed lives long
        try:
            if after is None:
                last = db.readings(last=1)
                after = last[0]["id"] if last else 0
            links, beat = None, time.monotonic()
            while not self._stopping.is_set():
                for row in db.readings("id > ?", (after,)):
                    send("reading", summary(row), row["id"])
                    after = row["id"]
                now = device_links(db)
                if _without_times(now) != _without_times(links):  # a board heard again, saying the same: not news
                    send("links", now)
                    links = now
                if time.monotonic() - beat > HEARTBEAT_S:
                    send(None, None)
                    beat = time.monotonic()
                self._stopping.wait(POLL_S)
        finally:
            db.close()


def device_links(db):
    """The boards' links (db.links()), each with `revoked_at` of the identity it signs with (None: not revoked)."""
    links = db.links()
    for link in links.values():
        kid = link.get("kid")
        link["revoked_at"] = db.devices(kid).get(kid, {}).get("revoked_at") if kid else None
    return links


def _without_times(links):
    return None if links is None else {k: {f: v for f, v in link.items() if f != "updated_at"}
                                       for k, link in links.items()}


def _handler(dashboard):
    class Handler(BaseHTTPRequestHandler):
        server_version = "safebench-dashboard"

        def log_message(self, fmt, *args):  # quiet: a presenter's terminal shows the URL, not every request
            pass

        def do_GET(self):
            if not self._addressed_to_us():
                return
            url = urlparse(self.path)
            path = url.path
            try:
                if path == "/":
                    return self._static("index.html")
                if path.lstrip("/") in STATIC:
                    return self._static(path.lstrip("/"))
                if path == "/api/state":
                    return self._json(dashboard.state())
                if path == "/api/events":
                    return self._events(url)
                if path.startswith("/api/readings/") and path.rsplit("/", 1)[1].isdigit():
                    found = dashboard.evidence(int(path.rsplit("/", 1)[1]))
                    return self._json(found) if found else self._error(HTTPStatus.NOT_FOUND, "no such reading")
                if path.startswith("/api/certificates/"):
                    kid = path.rsplit("/", 1)[1]
                    found = dashboard.certificate(kid)
                    return self._json({"kid": kid, "certificate": found}) if found else \
                        self._error(HTTPStatus.NOT_FOUND, "no registered device has this kid")
            except DatabaseError as e:
                return self._error(HTTPStatus.SERVICE_UNAVAILABLE, str(e))
            self._error(HTTPStatus.NOT_FOUND, f"nothing at {path}")

        def do_POST(self):
            if not self._addressed_to_us():
                return
            if urlparse(self.path).path != "/api/actions":
                return self._error(HTTPStatus.NOT_FOUND, "nothing to post to here")
            if self.headers.get_content_type() != "application/json":
                return self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "actions are JSON (Content-Type: application/json)")
            if dashboard.actions is None:
                return self._error(HTTPStatus.CONFLICT, "this page only shows: no demonstrator takes actions")
            try:
                length = int(self.headers.get("Content-Length", "0"))
                request = json.loads(self.rfile.read(min(length, 4096)) or b"null")
                if not isinstance(request, dict):
                    raise ValueError("not an object")
            except ValueError as e:
                return self._error(HTTPStatus.BAD_REQUEST, f"not a JSON action ({e})")
            try:
                self._json(dashboard.actions.take(request))
            except ActionError as e:
                self._error(HTTPStatus.CONFLICT, str(e))

        def _addressed_to_us(self):
            host = self.headers.get("Host", "")
            if host not in (f"{dashboard.host}:{dashboard.port}", f"localhost:{dashboard.port}"):
                self._error(HTTPStatus.MISDIRECTED_REQUEST, "not this server's name")
                return False
            return True

        def _static(self, name):
            data = resources.files(__package__).joinpath("static", name).read_bytes()
            self._send(HTTPStatus.OK, data, mimetypes.guess_type(name)[0] + "; charset=utf-8")

        def _json(self, obj):
            self._send(HTTPStatus.OK, json.dumps(obj).encode(), "application/json")

        def _error(self, status, message):
            self._send(status, json.dumps({"error": message}).encode(), "application/json")

        def _send(self, status, data, content_type):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
            self.end_headers()
            self.wfile.write(data)

        def _events(self, url):
            last = self.headers.get("Last-Event-ID") or parse_qs(url.query).get("after", [None])[0]
            after = int(last) if last and last.isdigit() else None
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()

            def send(event, data, event_id=None):
                if event is None:
                    message = ": still here\n\n"
                else:
                    message = (f"id: {event_id}\n" if event_id is not None else "") + \
                              f"event: {event}\ndata: {json.dumps(data)}\n\n"
                self.wfile.write(message.encode())
                self.wfile.flush()

            try:
                dashboard.feed(after, send)
            except (OSError, DatabaseError):
                pass  # the page went away (it reconnects by itself), or the database did: the page says so

    return Handler
