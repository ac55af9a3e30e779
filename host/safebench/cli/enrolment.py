"""`safebench est serve`, the enrolment server, and `safebench revoke` (docs/enrolment.md)."""

import argparse
import time
from pathlib import Path

from ..est.fleet import TOKEN
from ..pki import CA_CERT
from .command import Command, Group, devices_cas, target

GROUPS = (Group("est", "the enrolment server (EST, RFC 7030)"),)


def _port(text):
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: give 0..65535")
    return int(text)


def _serve_arguments(parser):
    parser.add_argument("--port", type=_port, default=8443, help="port on 127.0.0.1 (default 8443; 0: a free one)")
    parser.add_argument("--bootstrap-ca", help="CA certificate (PEM) of the devices' bootstrap certificates, the "
                                               "SIM manufacturer's (default: the bench CA)")
    parser.add_argument("--module", help="the PKCS#11 module of the HSM holding the CA key (default: SoftHSM2, "
                                         "its token in <state>/hsm)")
    parser.add_argument("--token", default=TOKEN, help=f"the token's label (default {TOKEN})")
    parser.add_argument("--pin-file", help="a file holding the token's user PIN (default for SoftHSM2: made in "
                                           "<state>/hsm the first time)")


def _est_server(state, port=0, module=None, token=TOKEN, pin_file=None, bootstrap_ca=None):
    """The state's EST server (not started: a context manager) and its registry, which it closes."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from .. import tls
    from ..est import EstServer
    from ..est.fleet import fleet_ca
    from ..pki import load_ca_cert
    from ..registry import Registry

    state = Path(state)
    ca = fleet_ca(state, module, token, pin_file)
    bootstrap = load_ca_cert(bootstrap_ca or state / "ca" / CA_CERT)
    files = tls.make_server_files(state / "hsm" / "est-server", ca, bootstrap.public_bytes(Encoding.PEM))
    registry = Registry.of_state(state)
    try:
        return EstServer(ca, bootstrap, registry, files, port), registry
    except BaseException:
        registry.close()
        raise


def _serve(args):
    """Issue devices their operational certificates until Ctrl-C, the CA key in the HSM."""
    from ..est.fleet import CA_FILE

    est, registry = _est_server(args.state, args.port, args.module, args.token, args.pin_file, args.bootstrap_ca)
    with registry, est as server:
        record = {"event": "serving", "url": server.url, "ca": str(Path(args.state) / "hsm" / CA_FILE),
                  "key": f"{args.token}: not extractable" if not server.ca.key.extractable else "EXTRACTABLE"}
        _emit(args, record)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return {"url": server.url}


def _emit(args, record):
    import json

    print(json.dumps(record) if args.json else
          f"EST on {record['url']} (TLS 1.3, bootstrap client certificates), CA {record['ca']}, its key in the token "
          f"{record['key']}. Ctrl-C stops it.", flush=True)


# ---- enroll | identity ---------------------------------------------------------------------------

def _enroll_arguments(parser):
    parser.add_argument("--est", metavar="URL", help="the EST server, https://HOST:PORT/.well-known/est/ (default: "
                                                      "the bench's own, started for the enrolment)")
    parser.add_argument("--ca", help="with --est: CA certificate (PEM) the server's certificate must chain to "
                                     "(default: the bench's fleet CA)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds the board may take: a key pair, a signature and a TLS handshake on the SIM "
                             "(default 600: an emulated Pico's pace)")


def _enroll(args):
    """Have the board enrol its SIM (the SIM makes the key, the board the request; EST inside TLS 1.3 with the
    SIM's bootstrap credential, or its operational one to re-enrol), then bind the board to the new identity
    and register it."""
    import contextlib
    from urllib.parse import urlparse

    from cryptography.hazmat.primitives.serialization import Encoding

    from ..binding import operator_key
    from ..device import Device
    from ..errors import UsageError
    from ..pki import load_ca_cert
    from ..provision import register_device
    from ..registry import Registry

    port, _ = target(args)
    if args.est:
        url = urlparse(args.est)
        if url.scheme != "https" or not url.hostname or url.path.rstrip("/") != "/.well-known/est":
            raise UsageError(f"--est {args.est}: give https://HOST:PORT/.well-known/est/")
        if not args.ca:
            raise UsageError("--est needs --ca, the CA the EST server's certificate chains to")
        anchor = load_ca_cert(args.ca)
    with Device(port, timeout=args.timeout) as dev:
        dev.connect()
        with contextlib.ExitStack() as stack:
            if args.est:
                host, est_port = url.hostname, url.port or 443
            else:
                est, registry = _est_server(args.state)
                stack.enter_context(registry)
                server = stack.enter_context(est)
                host, est_port, anchor = server.host, server.port, server.ca.cert
            done = dev.call("enroll", host=host, port=est_port, ca=anchor.public_bytes(Encoding.DER).hex(),
                            timeout_ms=int(args.timeout * 1000))
        with Registry.of_state(args.state) as registry:
            # The identity is new (a new kid): the operator binds the board to it, as after a SIM swap.
            registered = register_device(dev, devices_cas(args), registry, rebind=True,
                                         operator=operator_key(args.state))
    return {"port": port, **done, "board_id": registered["board_id"], "board_binding": registered["board_binding"]}


def _say_enrolled(res):
    how = "re-enrolled" if res["operation"] == "simplereenroll" else "enrolled"
    lines = [f"SIM {res['iccid']} {how}: {res['subject']} from {res['issuer']}, valid until {res['not_after']}, "
             f"kid {res['kid'][:16]}... (its key made in the SIM, the certificate kept in the board's flash)"]
    if res.get("board_binding"):
        lines.append(f"board {res['board_id']} bound to it (generation {res['board_binding']['generation']})")
    return lines


def _identity(args):
    """The certificate the board signs under now and its chain, checked with cryptography against the
    devices' CAs."""
    from binascii import unhexlify

    from .. import verify
    from ..device import Device

    port, _ = target(args)
    cas = devices_cas(args)
    with Device(port) as dev:
        dev.connect()
        res = dev.call("identity")
    cert = verify.certificate_chain(unhexlify(res["certificate"]), cas)
    return {"port": port, **res, "subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "not_after": cert.not_valid_after_utc.isoformat()}


def _identity_arguments(parser):
    parser.add_argument("--ca", help="CA certificate (PEM) that must have issued the certificate (default: the "
                                     "bench CA and the fleet CA)")


def _say_identity(res):
    where = "the board's flash (enrolled)" if res["store"] == "flash" else "the SIM's certificate file"
    return [f"SIM {res['iccid']} signs as {res['subject']} (issued by {res['issuer']}, until {res['not_after']}), "
            f"kid {res['kid'][:16]}..., kept in {where}; chain: {len(res['chain'])} certificate(s)"]


# ---- revoke --------------------------------------------------------------------------------------

def _revoke_arguments(parser):
    parser.add_argument("device", metavar="DEVICE", help="its ICCID (every identity registered for it), or its kid "
                                                        "(at least its first 8 hex digits)")
    parser.add_argument("--db", metavar="URL", help="the registry's database (default: the state's safebench.db)")


def _revoke(args):
    """Mark the device revoked (the ingest rejects its readings, the EST server its re-enrolment) and publish
    the CRL (the broker refuses its TLS connection)."""
    from .. import revocation
    from ..est.fleet import device_cas
    from ..registry import Registry

    with Registry.of_state(args.state, args.db) as registry:
        done = revocation.revoke(args.state, registry, args.device, device_cas(args.state))
        done["iccids"] = sorted({registry.devices[kid]["iccid"] for kid in done["kids"]})
    return done


def _say_revoked(res):
    was = len(res["kids"]) - len(res["newly"])
    lines = [f"revoked {', '.join(kid[:16] + '...' for kid in res['kids'])} (SIM {', '.join(res['iccids'])})"
             + (f"; {was} of them revoked before" if was else "")]
    return lines + [f"CRL {res['number']} published: {res['crl']}, {res['listed']} certificates revoked in all"]


COMMANDS = (
    Command(("enroll",), "enrol the board's SIM over EST: a key made in the SIM, a certificate from the fleet CA",
            _enroll, _enroll_arguments, _say_enrolled, target=True),
    Command(("identity",), "the certificate the board signs under now, and where it is kept", _identity,
            _identity_arguments, _say_identity, target=True),
    Command(("revoke",), "revoke a device: the ingest, the EST server and (by the CRL) the broker refuse it",
            _revoke, _revoke_arguments, _say_revoked),
    Command(("est", "serve"), "run the enrolment server (EST) with the fleet CA's key in an HSM, until Ctrl-C",
            _serve, _serve_arguments, lambda res: [f"EST {res['url']} stopped"], streams=True),
)
