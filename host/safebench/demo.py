"""`safebench demo`: the whole product on one board (simulated by default), told in plain words."""

import sys
from pathlib import Path

from cryptography import x509

from . import deploy
from .device import Device
from .pki import CA_CERT
from .provision import register_device
from .readings import check
from .registry import Registry
from .signing import sign_and_verify
from .simulated_bench import SimulatedBench

MESSAGE = b"temperature=21.5C"
READINGS = 5


def run_demo(args, target=None, ca_path=None, out=sys.stdout):
    """The demonstration on `target` ({"port", "type"}: a real board, checked against the CA at
    `ca_path`), or on a simulated bench: the running one, else one brought up and taken down here."""

    def say(line):
        if not args.json:
            print(line, file=out, flush=True)

    if target:
        say(f"Real board {target['type']} on {target['port']}")
        return _demonstrate(args, target, Path(ca_path), say)
    bench = SimulatedBench(args.state)
    own_bench = not bench.status()["up"]
    if own_bench:
        bench.down()  # clear what a crashed bench left behind
        say("Bringing up a simulated bench: MicroPython board + cellular modem + IoT SAFE SIM ...")
        bench.up(heap=args.heap)
    try:
        board = bench.board()
        say(f"  board      {board['type']} (MicroPython unix port, heap {board['heap']})")
        say(f"  serial     {board['port']} -> {board['device']}")
        return _demonstrate(args, board, Path(args.state) / "ca" / CA_CERT, say)
    finally:
        if own_bench:
            bench.down()
            say("Bench down.")


def _demonstrate(args, board, ca_path, say):
    say("Deploying the firmware with mpy-cross and mpremote ...")
    res = deploy.deploy(board["port"], board["type"], Path(args.state) / "build" / board["type"])  # roles: on the card
    say(f"  {len(res['files'])} files, {len(res['copied'])} copied")
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    with Device(board["port"]) as dev:
        info = dev.connect()
        say(f"  firmware   {info['firmware']} on MicroPython {info['micropython']}, {info['mem_free']} bytes free")
        say(f"Asking the SIM to sign {MESSAGE.decode()!r} ...")
        ev = sign_and_verify(dev, MESSAGE, ca)
        say(f"  ICCID      {ev['iccid']}")
        say(f"  key ID     {ev['key']} (private key stays on the SIM)")
        say(f"  signature  {ev['signature'][:32]}... (ECDSA P-256, raw r||s)")
        say(f"  subject    {ev['subject']}")
        say(f"  issuer     {ev['issuer']}")
        say("signature verified: it checks with the certificate's key, and the certificate chains to the CA")
        verdicts = _stream_readings(dev, ca, Path(args.state), say)
    return {"board": board, "deploy": res, "firmware": info, **ev, "readings": verdicts}


def _stream_readings(dev, ca, state, say):
    """Register the device, then show signed readings arriving, each with its verdict, and one forgery."""
    registry = Registry.of_state(state)
    reg = register_device(dev, ca, registry)
    say(f"Registered the device: kid {reg['kid'][:16]}... (SHA-256 of its certificate)")
    say("Signed readings (COSE_Sign1, ES256 by the SIM, SenML payload), checked with pycose and cryptography:")
    accepted, verdicts, cose = registry.accepted(), [], b""
    for _ in range(READINGS):
        cose = bytes.fromhex(dev.call("reading")["cose"])
        verdict = check(cose, registry, ca, accepted)
        verdicts.append(verdict.as_dict())
        say("  " + _line(verdict, len(cose)))
    registry.save()
    forged = bytearray(cose)
    forged[forged.find(b"Cel") + 12] ^= 0x01  # the last byte of the float64 value after `"Cel", 2:`
    verdicts.append(check(bytes(forged), registry, ca, dict(accepted)).as_dict())
    say("  tampered copy of the last one: " + ("ACCEPTED (this is a bug)" if verdicts[-1]["verified"]
                                               else f"rejected: {verdicts[-1]['reason']}"))
    say("  the last one sent again: " + check(cose, registry, ca, accepted).reason)
    return verdicts


def _line(v, size):
    temp = next((x for x in v.values if x["unit"] == "Cel"), None)
    value = f"{temp['value']:.2f} C" if temp else "?"
    status = "verified" if v.ok else f"REJECTED: {v.reason}"
    return f"seq {v.seq:>3}  {value:>9}  {size} bytes  {status}"
