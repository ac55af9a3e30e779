"""An EST client (RFC 7030) on the host: what a device does to enrol, for the tests, the benchmark and
`safebench enroll` against a server. The board's own client is firmware."""

import base64
import http.client
import ssl
from urllib.parse import urlparse

from cryptography.hazmat.primitives.serialization import pkcs7

from ..errors import EnrolmentError


class EstClient:
    """The EST server at `url` (https://HOST:PORT/.well-known/est/), checked against the CA file `ca`, with
    the TLS client certificate and key files `cert` and `key`."""

    def __init__(self, url, ca, cert, key, timeout=30.0):
        parsed = urlparse(url)
        if parsed.scheme != "https" or not parsed.hostname:
            raise EnrolmentError(f"{url}: an EST server is https://HOST:PORT/.well-known/est/")
        self.url, self.host, self.port, self.path = url, parsed.hostname, parsed.port or 443, parsed.path.rstrip("/")
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=str(ca))  # the server is always authenticated
        self.context.minimum_version = ssl.TLSVersion.TLSv1_3
        self.context.load_cert_chain(str(cert), str(key))

    def cacerts(self):
        return self._certs(self._ask("GET", "cacerts"))

    def enroll(self, csr_der: bytes, again=False):
        """The certificate issued for the PKCS#10 request `csr_der` (x509.Certificate)."""
        certs = self._certs(self._ask("POST", "simplereenroll" if again else "simpleenroll",
                                      base64.encodebytes(csr_der), {"Content-Type": "application/pkcs10"}))
        if len(certs) != 1:
            raise EnrolmentError(f"{self.url}: the server answered {len(certs)} certificates, not the one asked for")
        return certs[0]

    def _ask(self, method, op, body=None, headers=None):
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=self.timeout)
        try:
            conn.request(method, f"{self.path}/{op}", body=body, headers=headers or {})
            res = conn.getresponse()
            data = res.read()
        except ssl.SSLError as e:
            raise EnrolmentError(f"{self.url}: TLS failed: {e.reason or e}") from None
        except OSError as e:
            raise EnrolmentError(f"{self.url}: {e.strerror or e}") from None
        finally:
            conn.close()
        if res.status != 200:
            raise EnrolmentError(f"{self.url}{op} refused ({res.status}): {data.decode(errors='replace').strip()}")
        return data

    def _certs(self, body):
        try:
            return pkcs7.load_der_pkcs7_certificates(base64.b64decode(body))
        except ValueError:
            raise EnrolmentError(f"{self.url}: the answer is no certs-only PKCS#7") from None
