"""`safebench est serve`, the enrolment server, and `safebench revoke` (docs/enrolment.md)."""

import argparse
import time
from pathlib import Path

from ..pki import CA_CERT
from .command import Command, Group

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
    parser.add_argument("--token", default="safebench-fleet", help="the token's label (default safebench-fleet)")
    parser.add_argument("--pin-file", help="a file holding the token's user PIN (default for SoftHSM2: made in "
                                           "<state>/hsm the first time)")


def _serve(args):
    """Issue devices their operational certificates until Ctrl-C, the CA key in the HSM."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from .. import tls
    from ..est import EstServer
    from ..est.fleet import CA_FILE, fleet_ca
    from ..pki import load_ca_cert
    from ..registry import Registry

    state = Path(args.state)
    ca = fleet_ca(state, args.module, args.token, args.pin_file)
    bootstrap = load_ca_cert(args.bootstrap_ca or state / "ca" / CA_CERT)
    files = tls.make_server_files(state / "hsm" / "est-server", ca, bootstrap.public_bytes(Encoding.PEM))
    with Registry.of_state(state) as registry, EstServer(ca, bootstrap, registry, files, args.port) as server:
        record = {"event": "serving", "url": server.url, "ca": str(state / "hsm" / CA_FILE),
                  "key": f"{args.token}: not extractable" if not ca.key.extractable else "EXTRACTABLE"}
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
    Command(("revoke",), "revoke a device: the ingest, the EST server and (by the CRL) the broker refuse it",
            _revoke, _revoke_arguments, _say_revoked),
    Command(("est", "serve"), "run the enrolment server (EST) with the fleet CA's key in an HSM, until Ctrl-C",
            _serve, _serve_arguments, lambda res: [f"EST {res['url']} stopped"], streams=True),
)
