"""`safebench demo`: the whole product on one simulated board, told in plain words."""

import sys
from pathlib import Path

from cryptography import x509

from . import deploy
from .bench import Bench
from .device import Device
from .pki import CA_CERT
from .signing import sign_and_verify

MESSAGE = b"temperature=21.5C"


def run_demo(args, out=sys.stdout):
    def say(line):
        if not args.json:
            print(line, file=out, flush=True)

    bench = Bench(args.state)
    own_bench = not bench.status()["up"]
    if own_bench:
        bench.down()  # clear what a crashed bench left behind
        say("Bringing up a simulated bench: MicroPython board + cellular modem + IoT SAFE SIM ...")
        bench.up(heap=args.heap)
    try:
        board = bench.board()
        say(f"  board      {board['type']} (MicroPython unix port, heap {board['heap']})")
        say(f"  serial     {board['port']} -> {board['device']}")
        say("Deploying the firmware with mpy-cross and mpremote ...")
        res = deploy.deploy(board["port"], board["type"], Path(args.state) / "build" / board["type"])
        say(f"  {len(res['files'])} files, {len(res['copied'])} copied")
        ca = x509.load_pem_x509_certificate((Path(args.state) / "ca" / CA_CERT).read_bytes())
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
        say("signature verified: it checks with the certificate's key, and the certificate chains to the bench CA")
        return {"board": board, "deploy": res, "firmware": info, **ev}
    finally:
        if own_bench:
            bench.down()
            say("Bench down.")
