"""The benchmarked operations: the JSON-RPC request each one makes, the host check of its answer,
and its lower bound (`lower_bounds`).

`request` is what is timed and traced; `check` runs afterwards on the host (a signature verified
with the SIM's certificate, a reading through `safebench.readings.check`, a TLS session as the
server saw it), so a benchmark never counts an operation that did not work. An operation the
firmware does not offer raises `NotAvailable`.
"""

import contextlib
from binascii import unhexlify
from dataclasses import dataclass
from typing import Callable

from safebench import signing, verify
from safebench.errors import RpcError
from safebench.readings import check as check_reading
from safebench.rpc_codes import INTERNAL_ERROR, METHOD_NOT_FOUND

from . import lower_bounds as lb

MESSAGE = bytes(range(100))  # "sign message": 100 bytes, hashed with SHA-256 on the board
TLS_DATA = b"hello from the benchmark\n"
TLS_TIMEOUT = 30.0  # s; the handshake takes well under a second on the simulated bench


class NotAvailable(Exception):
    """The firmware (or the host) does not offer this operation."""


class CheckFailed(Exception):
    """The operation answered, but its answer does not check out."""


@dataclass
class Context:
    device: object  # safebench.device.Device
    ca_cert: object  # the bench CA (cryptography x509.Certificate)
    cert: object  # the SIM's client certificate, already checked against the CA
    registry: object  # safebench.readings.Registry holding this SIM
    ca_dir: object  # folder of the bench CA (its key issues the TLS server certificate)
    tls_folder: object  # where the TLS server's files go
    last_seq: dict = None
    server: object = None
    tls_timeout: float = TLS_TIMEOUT  # s; an emulated Pico (0.16x a real one) needs minutes
    tls_verify: str = "firmware"  # who checks the server's signatures (certificate, CertificateVerify): board or `sim`

    def __post_init__(self):
        self.last_seq = {} if self.last_seq is None else self.last_seq


@dataclass
class Facts:
    """Sizes the bounds depend on: what the card holds, not how it is fetched."""

    applet_info_len: int
    object_list_len: int
    cert_len: int
    message_len: int = len(MESSAGE)


@dataclass(frozen=True)
class Operation:
    key: str
    label: str
    request: Callable
    check: Callable
    bound: Callable  # (Facts, lower_bounds.Card, TimingModel) -> Bound
    serve: Callable = None  # (Context, calls) -> context manager: a peer for that many calls
    # The instruction of the APDU the board sends after the operation, for the next one (off its critical
    # path), and the bound of the critical path without it.
    ahead_ins: int = None
    critical_bound: Callable = None

    def session(self, ctx, calls):
        return self.serve(ctx, calls) if self.serve else contextlib.nullcontext()


def _tlv_len(values):
    return sum(2 + len(v) // 2 for v in values)


def gather_facts(device):
    """Ask the card (through the firmware) what it holds; traffic not measured."""
    info = device.call("sim.info")
    objects = sum(_tlv_len(list(r["attributes"].values()) + [r["id"]] + ([r["label"].encode().hex()] if "label" in r
                                                                       else [])) for r in info["objects"])
    cert = device.call("sim.read_file", file="02")["data"]
    return Facts(_tlv_len(info["applet"].values()), objects, len(cert) // 2)


# -- requests and checks --------------------------------------------------------------------------

def _call(method, **params):
    return lambda ctx: ctx.device.call(method, **params)


def _check_info(ctx, res):
    if not res.get("iccid") or not res.get("objects") or "10" not in res.get("applet", {}):
        raise CheckFailed(f"sim.info answered {sorted(res)} without ICCID, applet info or objects")


def _check_cert(ctx, res):
    verify.certificate_chain(unhexlify(res["data"]), ctx.ca_cert)


def _check_signature(message):
    def check(ctx, res):
        signing.check_signature(ctx.cert, message, unhexlify(res["signature"]))
    return check


def _check_reading(ctx, res):
    verdict = check_reading(unhexlify(res["cose"]), ctx.registry, ctx.ca_cert, ctx.last_seq)
    if not verdict.ok:
        raise CheckFailed(f"reading {res.get('seq')}: {verdict.reason}")


@contextlib.contextmanager
def _tls_server(ctx, calls):
    try:
        from cryptography.hazmat.primitives import serialization

        from safebench import tls
        from safebench.pki import CA_CERT, CA_KEY, CertificateAuthority
    except ImportError as e:
        raise NotAvailable(f"the host has no TLS server ({e})") from None
    ca = CertificateAuthority.load(ctx.ca_dir / CA_CERT, ctx.ca_dir / CA_KEY)
    files = tls.make_server_files(ctx.tls_folder, ca, ca.cert.public_bytes(serialization.Encoding.PEM))
    with tls.PythonServer(files, suites=("gcm",), connections=calls, timeout=max(60.0, ctx.tls_timeout)) as server:
        ctx.server = server
        try:
            yield server
        finally:
            ctx.server = None


def _tls_request(ctx):
    from safebench import tls

    try:
        return tls.board_session(ctx.device, "127.0.0.1", ctx.server.port, "localhost", TLS_DATA, suites=["gcm"],
                                 verify=ctx.tls_verify, timeout=ctx.tls_timeout)
    except RpcError as e:
        if e.code == METHOD_NOT_FOUND or (e.code == INTERNAL_ERROR and e.data.get("type") == "ImportError"):
            raise NotAvailable(f"the firmware has no tls.echo ({e})") from None
        raise


def _tls_check(ctx, res):
    from safebench import tls

    seen = ctx.server.result()
    if seen.get("version") != "TLSv1.3" or "client_cert" not in seen:
        raise CheckFailed(f"the server saw {seen.get('version')}: {seen.get('error', 'no client certificate')}")
    der = bytes.fromhex(seen["client_cert"])
    verify.certificate_chain(der, ctx.ca_cert)
    if der != _der(ctx.cert):
        raise CheckFailed("the server saw another client certificate than the SIM's")
    if bytes.fromhex(res["received"]) != tls.REPLY_PREFIX + TLS_DATA:
        raise CheckFailed(f"the board received {res['received']!r}")


def _der(cert):
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.DER)


OPERATIONS = [
    Operation("sim_info", "sim.info", _call("sim.info"), _check_info,
              lambda f, card, timing: lb.sim_info(f.applet_info_len, f.object_list_len)),
    Operation("read_cert", "certificate read (file 02)", _call("sim.read_file", file="02"), _check_cert,
              lambda f, card, timing: lb.read_file(f.cert_len, card)),
    Operation("sign_message", f"sign message ({len(MESSAGE)} B)", _call("sim.sign", message=MESSAGE.hex()),
              _check_signature(MESSAGE), lambda f, card, timing: lb.sign_message(f.message_len, card, timing)),
    Operation("reading", "signed reading", _call("reading"), _check_reading,
              lambda f, card, timing: lb.signed_reading(card)),
    Operation("tls_handshake", "TLS 1.3 handshake", _tls_request, _tls_check,
              lambda f, card, timing: lb.tls_handshake(card), serve=_tls_server,
              ahead_ins=0xB9, critical_bound=lambda f, card, timing: lb.tls_handshake(card, key_made_ahead=True)),
]


def by_key(keys=None):
    """The operations named in `keys` (all when None), in table order; unknown names raise KeyError."""
    if keys is None:
        return list(OPERATIONS)
    known = {op.key: op for op in OPERATIONS}
    missing = [k for k in keys if k not in known]
    if missing:
        raise KeyError(f"unknown operation(s) {', '.join(missing)}; known: {', '.join(known)}")
    return [op for op in OPERATIONS if op.key in keys]
