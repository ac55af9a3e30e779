"""What the page shows of a stored reading: its row in the table, and its evidence (the bytes, their CBOR,
its signer's certificate, and which of the ingest's checks ran)."""

import datetime

import cbor2
from cryptography import x509

from ..readings import BAD_SIGNATURE, MALFORMED, MOVED_SIM, REPLAYED, REVOKED, STALE, UNKNOWN_KEY, UNTRUSTED

# The ingest's checks in the order it makes them (readings._verdict, then the database's "stored once").
CHECKS = ("COSE_Sign1, ES256, with a kid", "kid of a registered device", "device not revoked",
          "certificate chains to the devices' CA", "ES256 signature (cryptography)", "SenML payload numbered by "
          "epoch and seq", "taken on the board its SIM is bound to", "newer than the device's last stored reading",
          "time within bounds")
_FAILS_AT = {UNKNOWN_KEY: 1, REVOKED: 2, UNTRUSTED: 3, BAD_SIGNATURE: 4, MOVED_SIM: 6, REPLAYED: 7, STALE: 8}


def summary(row) -> dict:
    """The table's row of a stored reading (Database.readings' dict), with its COSE bytes for the browser's
    own check of the signature."""
    return {"id": row["id"], "stored_at": row["stored_at"], "device": row["iccid"] or _topic_device(row["topic"]),
            "kid": row["kid"], "epoch": row["epoch"], "seq": row["seq"], "time": row["reading_time"],
            "values": row["measurements"], "dropped": row["dropped"], "verdict": row["verdict"],
            "reason": row["reason"], "cose": row["cose"].hex()}


def evidence(row, certificate_der) -> dict:
    """The drawer's contents: the reading decoded (CBOR diagnostic notation), its signer's certificate (hex DER,
    subject, issuer; None when the kid is no registered device's), and each check with what came of it."""
    out = {**summary(row), "cbor": _cbor_text(row["cose"]), "payload": None, "certificate": None,
           "checks": checks(row["verdict"], row["reason"])}
    try:
        out["payload"] = diagnostic(cbor2.loads(cbor2.loads(row["cose"]).value[2]))
    except Exception:  # what cannot be decoded is shown as bytes only; the verdict says why
        pass
    if certificate_der:
        out["certificate"] = certificate_info(certificate_der)
    return out


def certificate_info(der) -> dict:
    cert = x509.load_der_x509_certificate(der)
    return {"der": der.hex(), "subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "not_after": cert.not_valid_after_utc.isoformat()}


def checks(verdict, reason) -> list:
    """[{check, result: passed | failed | not run}] of a verdict: the checks stop at the first that fails."""
    if verdict == MALFORMED:
        failed = 5 if reason.startswith("payload") else 0
    else:
        failed = _FAILS_AT.get(verdict, len(CHECKS))
    return [{"check": c, "result": "passed" if i < failed else "failed" if i == failed else "not run"}
            for i, c in enumerate(CHECKS)]


def _cbor_text(cose):
    try:
        return diagnostic(cbor2.loads(cose))
    except Exception as e:  # cbor2 raises several kinds on hostile input
        return f"not CBOR ({e})"


def diagnostic(x) -> str:
    """CBOR diagnostic notation (RFC 8949 §8) of a decoded item."""
    if isinstance(x, cbor2.CBORTag):
        return f"{x.tag}({diagnostic(x.value)})"
    if isinstance(x, bytes):
        return f"h'{x.hex()}'"
    if isinstance(x, str):
        return '"' + x.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(x, bool):
        return "true" if x else "false"
    if x is None:
        return "null"
    if isinstance(x, list):
        return "[" + ", ".join(diagnostic(v) for v in x) + "]"
    if isinstance(x, dict):
        return "{" + ", ".join(f"{diagnostic(k)}: {diagnostic(v)}" for k, v in x.items()) + "}"
    if isinstance(x, datetime.datetime):
        return f'1("{x.isoformat()}")'
    return repr(x)


def _topic_device(topic):
    parts = topic.split("/")
    return parts[1] if len(parts) == 3 else topic
