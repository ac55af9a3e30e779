"""The device registry: known devices by kid (SHA-256 of the certificate), in the rig's database.

Each device has its ICCID, its certificate, whether it is revoked, and the last reading `read` accepted from
it (`epoch`, `last_seq`): the verifier's memory, which no wipe of a board resets. Registries of earlier
safebench versions were a JSON file, `registry.json` in the state folder: opening the state's registry
moves such a file into the database once and keeps it as `registry.json.migrated`.
"""

import hashlib
import json
import os
import time
from pathlib import Path

from .database import DEFAULT_NAME, open_database
from .errors import UnreadableFileError

LEGACY_FILE = "registry.json"
REFRESH_S = 1.0  # how stale a long-running reader's copy may get (a revocation, a newly registered device)


def kid_of(cert_der: bytes) -> str:
    """A device's name in the registry and in its readings: the SHA-256 of its certificate (DER), hex."""
    return hashlib.sha256(cert_der).hexdigest()


class Registry:
    """The devices of the database `db` (a Database), read once and kept; `refresh` reads them again."""

    def __init__(self, db):
        self.db = db
        self.devices = db.devices()
        self._read_at = time.monotonic()
        self._boards = None  # board ID -> the kids bound to it, made when first asked

    @classmethod
    def of_state(cls, state, url=None):
        """The registry of the state folder `state`: in the database at `url`, by default its SQLite file; a
        `registry.json` of an earlier version is migrated into it first."""
        db = open_database(url or Path(state) / DEFAULT_NAME)
        try:
            migrate_file(Path(state) / LEGACY_FILE, db)
        except Exception:
            db.close()
            raise
        return cls(db)

    @property
    def where(self) -> str:
        return self.db.url

    def close(self):
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def refresh(self, force=False):
        """Read the devices again if the copy is older than REFRESH_S (or `force`)."""
        if force or time.monotonic() - self._read_at >= REFRESH_S:
            moved = {kid: d for kid, d in self.devices.items() if d.get("moved")}  # not saved yet: kept
            self.devices = {**self.db.devices(), **moved}
            self._read_at = time.monotonic()
            self._boards = None

    def add(self, cert_der: bytes, iccid: str) -> str:
        """Register (again) the device with this certificate; what was accepted from it stays accepted."""
        kid = kid_of(cert_der)
        self.db.add_devices({kid: {"iccid": iccid, "certificate": cert_der.hex()}})
        fresh = self.db.devices(kid)[kid]  # this one device read back: a fleet's registry is long
        had = self.devices.get(kid, {})
        if had.get("moved"):  # a window moved here and not saved yet stays
            fresh.update(epoch=had["epoch"], last_seq=had["last_seq"], moved=True)
        self.devices[kid] = fresh
        self._boards = None
        return kid

    def bind(self, kid: str, board_id: str | None):
        """Record which board (its unique ID, hex) the device's SIM belongs to: its readings from any other
        are rejected (verdict moved-sim)."""
        self.db.bind(kid, board_id)
        if kid in self.devices:
            self.devices[kid]["board_id"] = board_id
        self._boards = None

    def bound_to(self, board_id: str) -> set:
        """The kids whose SIMs are bound to the board `board_id`."""
        if self._boards is None:
            self._boards = {}
            for kid, d in self.devices.items():
                if d.get("board_id"):
                    self._boards.setdefault(d["board_id"], set()).add(kid)
        return self._boards.get(board_id, set())

    def revoke(self, kid: str) -> bool:
        done = self.db.revoke(kid)
        self.refresh(force=True)
        return done

    def device(self, kid: str) -> dict | None:
        """The device of `kid`; a kid not known yet is looked up again at most every REFRESH_S."""
        if kid not in self.devices:
            self.refresh()
        return self.devices.get(kid)

    def certificate_der(self, kid: str) -> bytes | None:
        dev = self.device(kid)
        return bytes.fromhex(dev["certificate"]) if dev else None

    def accepted(self):
        """kid -> (epoch, seq) of the last reading accepted: `check`'s replay window; write back with `save`."""
        return _Accepted(self)

    def save(self):
        """Write back the replay windows `accepted()` moved."""
        self.db.save_windows({kid: (d["epoch"], d["last_seq"]) for kid, d in self.devices.items()
                              if d.pop("moved", False)})


class _Accepted(dict):
    def __init__(self, registry):
        super().__init__({kid: (d["epoch"], d["last_seq"]) for kid, d in registry.devices.items()})
        self.registry = registry

    def __setitem__(self, kid, last):
        super().__setitem__(kid, last)
        device = self.registry.devices[kid]
        device["epoch"], device["last_seq"] = last
        device["moved"] = True


def migrate_file(path: Path, db):
    """Move the JSON registry at `path` (if any) into `db`, then rename it `*.migrated`. Run twice (a crash
    between the two steps), it changes nothing more: adding a device keeps the later window."""
    try:
        devices = json.loads(path.read_text())
        if not isinstance(devices, dict) or not all(
                isinstance(d, dict) and isinstance(d["certificate"], str) and isinstance(d["iccid"], str)
                for d in devices.values()):
            raise TypeError("a device without its certificate or ICCID")
        for d in devices.values():
            bytes.fromhex(d["certificate"])
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:  # ValueError: not JSON, not hex
        why = getattr(e, "strerror", None) or e
        raise UnreadableFileError(f"the device registry {path} is damaged ({why}): restore it, or remove "
                                  "it and register the devices again with `safebench provision`") from None
    db.add_devices(devices)
    os.replace(path, path.with_name(path.name + ".migrated"))
