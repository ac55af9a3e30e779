"""`make dashboard`: a complete demonstrator behind the page. Simulated boards (each with its modem and
SIM) publish signed readings over MQTT in TLS 1.3 with the SIM's keys to Mosquitto on loopback; an ingest
worker checks and stores them; the page shows them. The page's buttons change that world:

- tamper: a member of the fleet (a client certificate of the bench CA, a software key: "the forwarder")
  publishes a copy of a reading with one byte flipped, through the broker: the ingest finds its signature bad;
- replay: the forwarder publishes a reading again, as it was: the ingest stores it as a replay;
- pull the SIM / drop the network on a board, through its simulated modem's fault control: readings cannot
  be signed (SIM out), or are signed and queue in the board's flash (network down) and arrive, in order,
  when it is back;
- swap two boards' SIMs (each modem's card image exchanged, through their fault control): each SIM's
  identity is bound to the board it came from, so the ingest rejects every reading of both (verdict moved-sim)
  until they are swapped back;
- revoke a board's identity (`safebench revoke`'s path): the ingest rejects what it still gets from it
  (verdict revoked), and the broker, restarted with the new CRL, refuses the board's TLS connection.

Each board's link (TLS version and suite, readings queued, last error) is recorded in the database for the
page, from what the board answers.
"""

import os
import threading
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from .. import deploy, revocation, tls
from ..broker import Broker
from ..device import Device
from ..errors import ActionError, RpcError, SafebenchError
from ..ingest import Ingest
from ..pki import CA_CERT, bench_ca, service_identity
from ..provision import register_device
from ..registry import Registry
from ..rpc_codes import E_NOT_CONNECTED
from ..simulated_bench import SimulatedBench
from .server import Dashboard, device_links

FORWARDER = "8999000000000000000"  # the forwarder's commonName (its topic), ICCID-like as the devices'
CALL_TIMEOUT = 120.0
_FAULTS = {"pull_sim": ("sim_remove", {}, {"sim": "removed"}), "insert_sim": ("sim_insert", {}, {"sim": "in"}),
           "network_down": ("register", {"stat": 0}, {"network": "down"}),
           "network_up": ("register", {"stat": 1}, {"network": "up"})}


class Demonstrator:
    """`boards` simulated boards in `state`/demonstrator publishing every `interval` s, the broker, the ingest and
    the page on 127.0.0.1:`port`. A context manager: all of it stopped on exit (boards, broker, worker)."""

    def __init__(self, state, boards=3, interval=1.0, port=0, log=print):
        self.dir = Path(state) / "demonstrator"
        self.count, self.interval, self.port, self.log = boards, interval, port, log
        self.bench = SimulatedBench(self.dir, attached=True)
        self._stopping = threading.Event()
        self._threads, self._devices, self._boards = [], [], {}  # iccid -> the bench's record of its board
        self.broker = self.ingest = self.dashboard = self.registry = self._forwarder = self._ca = None

    # ---- bring-up ---------------------------------------------------------------------------------------------

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        self.bench.down()  # what a crashed run left
        self.log(f"bringing up {self.count} simulated boards (MicroPython, cellular modem, IoT SAFE SIM) ...")
        self.bench.up(boards=self.count, dialect="simcom")  # the modem's own sockets: network faults reach them
        ca = bench_ca(self.dir)
        (self.dir / "demonstrator.db").unlink(missing_ok=True)  # each run starts with an empty page
        self.registry = Registry.of_state(self.dir, self.dir / "demonstrator.db")
        for board in self.bench.status()["boards"]:
            self.log(f"  deploying the firmware onto {board['name']} ...")
            deploy.deploy(board["port"], board["type"], self.dir / "build" / board["type"])
            dev = Device(board["port"])
            self._devices.append(dev)
            dev.connect()
            iccid = register_device(dev, ca.cert, self.registry)["iccid"]
            self._boards[iccid] = board
            self.registry.db.save_link(iccid, sim="in", network="up", queued=0)
        files = tls.make_server_files(self.dir / "broker", ca, ca.cert.public_bytes(Encoding.PEM))
        self._ca = ca
        crl = revocation.publish(self.dir, self.registry, [ca])["crl"]
        self.broker = Broker(files, crl=crl).__enter__()
        cert, key = service_identity(ca, self.dir / "ingest", "ingest")
        self.ingest = Ingest(self.broker.address, self.dir / "ca" / CA_CERT, cert, key,
                             Registry(self.registry.db.another()), ca.cert, client_id="ingest-demonstrator").start()
        self._forwarder = _forwarder(ca, self.dir / "forwarder", self.broker, self.dir / "ca" / CA_CERT)
        for (iccid, board), dev in zip(self._boards.items(), self._devices, strict=True):
            t = threading.Thread(target=self._publish, args=(iccid, dev), daemon=True, name=f"board {board['name']}")
            t.start()
            self._threads.append(t)
        self.dashboard = Dashboard(self.registry.db.url, self.port, actions=self).start()
        return self

    def stop(self):
        self._stopping.set()
        for t in self._threads:
            t.join(CALL_TIMEOUT)
        for part in (self.dashboard, self.ingest):
            if part is not None:
                part.stop()
        if self._forwarder is not None:
            self._forwarder.disconnect()
            self._forwarder.loop_stop()
        if self.broker is not None:
            self.broker.__exit__(None, None, None)
        for dev in self._devices:
            dev.close()
        if self.registry is not None:
            self.registry.close()
        self.bench.down()

    # ---- the boards ---------------------------------------------------------------------------------------------

    def _publish(self, iccid, dev):
        """Publish a reading every `interval` s until stopped, recording what the board says of its link."""
        db = self.registry.db.another()
        connected = False
        try:
            while not self._stopping.is_set():
                try:
                    if not connected:
                        opened = dev.call("mqtt.connect", host="127.0.0.1", port=self.broker.port,
                                          server_name="localhost", timeout=CALL_TIMEOUT)
                        connected = True
                        db.save_link(iccid, tls=f"{opened['version']} {opened['cipher']}", queued=opened["queued"],
                                     last_error=None)
                    res = dev.call("mqtt.publish", timeout=CALL_TIMEOUT)
                    db.save_link(iccid, kid=res["kid"].lower(), queued=res["queued"], last_error=res.get("error"))
                except RpcError as e:  # the SIM is out, say: no reading taken; the board goes on
                    connected = connected and e.code != E_NOT_CONNECTED
                    db.save_link(iccid, last_error=str(e))
                except SafebenchError as e:
                    db.save_link(iccid, last_error=str(e))
                    connected = False
                self._stopping.wait(self.interval)
        finally:
            if connected:
                try:
                    dev.call("mqtt.close", timeout=CALL_TIMEOUT)
                except SafebenchError:
                    pass
            db.close()

    # ---- the page's actions ---------------------------------------------------------------------------------------

    def offered(self):
        return {"tamper": True, "replay": True, "revoke": True, "swap": len(self._boards) > 1,
                "faults": {iccid: sorted(_FAULTS) for iccid in self._boards}}

    def take(self, request):
        action = request.get("action")
        if action in ("tamper", "replay"):
            rows = self.registry.db.readings("id = ?", (request.get("reading"),)) \
                if isinstance(request.get("reading"), int) else []
            if not rows:
                raise ActionError("no such reading")
            cose = rows[0]["cose"]
            if action == "tamper":
                cose = cose[:-1] + bytes([cose[-1] ^ 0x01])  # the signature's last byte: still CBOR, not signed
            sent = self._forwarder.publish(f"safebench/{FORWARDER}/readings", cose, qos=1)
            sent.wait_for_publish(10)
            return {"said": f"reading {rows[0]['id']} sent again" + (" with one byte flipped" if action == "tamper" else "")
                    + " by a member of the fleet, through the broker"}
        if action in _FAULTS:
            board = self._boards.get(request.get("device"))
            if board is None:
                raise ActionError("no such board")
            from safebench_simulator.faults import FaultControl, FaultControlError

            name, params, link = _FAULTS[action]
            try:
                with FaultControl(board["modem_control"]) as fault:
                    fault.request(name, **params)  # a lost registration takes the open connections with it
            except (FaultControlError, OSError) as e:
                raise ActionError(f"the simulated modem of {board['name']} did not do it: {e}") from None
            self.registry.db.save_link(request["device"], **link)
            return {"said": f"{action.replace('_', ' ')} on {board['name']}", "links": device_links(self.registry.db)}
        if action == "swap_sims":
            return self._swap_sims(request.get("device"))
        if action == "revoke":
            if request.get("device") not in self._boards:
                raise ActionError("no such board")
            done = revocation.revoke(self.dir, self.registry, request["device"], [self._ca])
            self.broker.load_crl()  # the board's connection ends; its reconnect meets the CRL
            return {"said": f"revoked {request['device']}: CRL {done['number']} published, the broker refuses it",
                    "links": device_links(self.registry.db)}
        raise ActionError(f"no action {action!r}: tamper, replay, revoke, swap_sims, {', '.join(sorted(_FAULTS))}")

    def _swap_sims(self, iccid):
        """Exchange the SIMs of the board of `iccid` and the next board: both pulled, their card images
        exchanged, both inserted (each modem reads its image again), as two people would swap them."""
        from safebench_simulator.faults import FaultControl, FaultControlError

        names = list(self._boards)
        if iccid not in self._boards:
            raise ActionError("no such board")
        other = names[(names.index(iccid) + 1) % len(names)]
        if other == iccid:
            raise ActionError("one board: no SIM to swap with")
        a, b = self._boards[iccid], self._boards[other]
        try:
            with FaultControl(a["modem_control"]) as fault_a, FaultControl(b["modem_control"]) as fault_b:
                fault_a.sim_remove()
                fault_b.sim_remove()
                card_a, card_b = Path(a["card"]), Path(b["card"])
                held = card_a.with_suffix(".swap")
                os.replace(card_a, held)
                os.replace(card_b, card_a)
                os.replace(held, card_b)
                fault_a.sim_insert()
                fault_b.sim_insert()
        except (FaultControlError, OSError) as e:
            raise ActionError(f"the simulated modems of {a['name']} and {b['name']} did not do it: {e}") from None
        swapped = self.registry.db.links().get(iccid, {}).get("sim") != "swapped"
        for board in (iccid, other):
            self.registry.db.save_link(board, sim="swapped" if swapped else "in")
        return {"said": f"SIMs of {a['name']} and {b['name']} {'swapped' if swapped else 'swapped back'}",
                "links": device_links(self.registry.db)}


def _forwarder(ca, folder, broker, broker_ca):
    """An MQTT client of the broker with a client certificate of the bench CA (CN FORWARDER): what a
    compromised member of the fleet can send."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    cert, key = service_identity(ca, folder, FORWARDER)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=FORWARDER, protocol=mqtt.MQTTv5)
    client.tls_set(ca_certs=str(broker_ca), certfile=str(cert), keyfile=str(key))
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client
