"""An EST server (RFC 7030) that issues devices their operational certificates, its CA key in an HSM.

    GET  /.well-known/est/cacerts         the issuing CA (certs-only PKCS#7, base64)
    POST /.well-known/est/simpleenroll    a PKCS#10 request (base64 DER) -> the certificate (PKCS#7, base64)
    POST /.well-known/est/simplereenroll  the same, before the current certificate expires

TLS 1.3 only, on 127.0.0.1 by default, and a client certificate is required: for `simpleenroll` the device's
bootstrap certificate (its manufacturer CA's, made with the card), for `simplereenroll` the operational
certificate this server issued, not revoked. The request must prove possession of its key (its signature
checks with the key it asks a certificate for, P-256); the certificate names the device as the broker and the
ingest expect (commonName = the ICCID the bootstrap certificate names) and is valid for `validity_days`. Each
issued certificate is registered in the registry: its kid is the device's name from then on.
"""

import base64
import datetime
import ssl
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from ..errors import EnrolmentError
from ..pki import issued_by
from ..registry import kid_of
from ..threaded_server import ThreadedServer

PATH = "/.well-known/est/"
VALIDITY_DAYS = 30  # short: a device re-enrols before the end, a revoked one cannot
MAX_REQUEST = 8192  # a P-256 CSR is a few hundred bytes


class EstServer(ThreadedServer):
    """EST on https://HOST:PORT/.well-known/est/ with the issuing CA `ca` (a pki.CertificateAuthority whose key
    may be an hsm.TokenKey), accepting bootstrap certificates of `bootstrap_ca` (x509), registering into
    `registry`. `files`: the server's TLS key and certificate (tls.ServerFiles; its client CA is ignored). A
    context manager: serving in a thread of its own until `stop()`."""

    thread_name = "est"

    def __init__(self, ca, bootstrap_ca, registry, files, port=0, host="127.0.0.1", validity_days=VALIDITY_DAYS):
        self.ca, self.bootstrap_ca, self.registry = ca, bootstrap_ca, registry
        self.validity_days = validity_days
        self._lock = threading.Lock()  # the registry's connection, and the token, one request at a time
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_cert_chain(files.cert, files.key)
        for cert in (bootstrap_ca, ca.cert):
            context.load_verify_locations(cadata=cert.public_bytes(serialization.Encoding.PEM).decode())
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._server.handle_error = _refused  # a client the TLS handshake refuses is no server error
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True, do_handshake_on_connect=False)
        self.host, self.port = self._server.server_address[:2]

    @property
    def url(self):
        return f"https://{self.host}:{self.port}{PATH}"

    def cacerts(self) -> bytes:
        return pkcs7.serialize_certificates([self.ca.cert], serialization.Encoding.DER)

    def enroll(self, csr_der: bytes, client: x509.Certificate, again: bool) -> bytes:
        """The certificate (PKCS#7 DER) for the request `csr_der` of the TLS client `client`; EnrolmentError
        says why not."""
        try:
            csr = x509.load_der_x509_csr(csr_der)
        except ValueError:
            raise EnrolmentError("not a PKCS#10 certificate request (base64 DER)") from None
        if not csr.is_signature_valid:
            raise EnrolmentError("the request's signature does not check with its key: no proof of possession")
        key = csr.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise EnrolmentError("the request's key is not an EC P-256 key")
        iccid = _common_name(client)
        with self._lock:
            if again:
                self._check_current(client)
            elif not _issued_by(client, self.bootstrap_ca):
                raise EnrolmentError("simpleenroll takes the device's bootstrap certificate")
            cert = self.ca.issue_device(key.public_bytes(serialization.Encoding.X962,
                                                         serialization.PublicFormat.UncompressedPoint), iccid,
                                        valid_days=self.validity_days)
            self.registry.add(cert.public_bytes(serialization.Encoding.DER), iccid)
        return pkcs7.serialize_certificates([cert], serialization.Encoding.DER)

    def _check_current(self, client):
        if not _issued_by(client, self.ca.cert):
            raise EnrolmentError("simplereenroll takes the certificate this server issued")
        kid = kid_of(client.public_bytes(serialization.Encoding.DER))
        device = self.registry.db.devices(kid).get(kid)  # as it is now: revoked a moment ago, say
        if device is None:
            raise EnrolmentError("simplereenroll: the certificate is no registered device's")
        if device.get("revoked_at") is not None:
            raise EnrolmentError("simplereenroll: the device's certificate is revoked")


def _refused(request, client_address):
    pass


def _issued_by(cert, issuer):
    """Signed by `issuer`, and valid now."""
    if not issued_by(cert, issuer):
        return False
    now = datetime.datetime.now(datetime.timezone.utc)
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def _common_name(cert):
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names or not str(names[0].value).isdigit():
        raise EnrolmentError("the client certificate names no ICCID (its commonName)")
    return str(names[0].value)


def _handler(est):
    class Handler(BaseHTTPRequestHandler):
        server_version = "safebench-est"
        protocol_version = "HTTP/1.1"  # kept alive: a board asks /cacerts and enrols in one TLS session

        def log_message(self, fmt, *args):
            pass

        def do_GET(self):
            if self.path != PATH + "cacerts":
                return self._send(HTTPStatus.NOT_FOUND, b"no such EST operation\n", "text/plain")
            self._pkcs7(est.cacerts())

        def do_POST(self):
            op = self.path.removeprefix(PATH)
            if not self.path.startswith(PATH) or op not in ("simpleenroll", "simplereenroll"):
                return self._send(HTTPStatus.NOT_FOUND, b"no such EST operation\n", "text/plain")
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_REQUEST:
                return self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE if length else HTTPStatus.LENGTH_REQUIRED,
                                  b"a certificate request is a few hundred bytes\n", "text/plain")
            try:
                csr = base64.b64decode(self.rfile.read(length), validate=False)
                client = x509.load_der_x509_certificate(self.connection.getpeercert(binary_form=True))
                self._pkcs7(est.enroll(csr, client, again=op == "simplereenroll"))
            except EnrolmentError as e:
                self._send(HTTPStatus.BAD_REQUEST if "request" in str(e) else HTTPStatus.FORBIDDEN,
                           (str(e) + "\n").encode(), "text/plain")

        def _pkcs7(self, der):
            self._send(HTTPStatus.OK, base64.encodebytes(der), "application/pkcs7-mime; smime-type=certs-only",
                       {"Content-Transfer-Encoding": "base64"})

        def _send(self, status, body, content_type, headers=None):
            if status != HTTPStatus.OK:
                self.close_connection = True  # a refused request's body may be unread: nothing after it is a request
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

    return Handler
