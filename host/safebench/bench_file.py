"""The bench file: the real boards of a bench by alias, each found by its USB serial number.

    boards:
      esp-bg96:
        serial: "0001A2B3"            # USB serial number, as `safebench boards` lists it
        type: esp32_devkitc_bg96      # its definition in boards/
        modem: quectel                # generic, quectel or simcom
        sim: {iccid: "8944500601200000001", ca: certs/my-ca.pem}
        notes: shelf 2, hub port 3
      sim0:
        port: .bench/sim0/tty         # or a fixed path (relative paths start at this file's folder)
        type: unix_sim

`--board ALIAS` then stands for `--port <the port with that serial number> --board-type <type>`, so
nothing depends on the order in which /dev/ttyACM* nodes were handed out. The file is read from
`--bench FILE`, else $SAFEBENCH_BENCH, else ./bench.yaml.
"""

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from safebench_simulator.dialects import DIALECTS

from .errors import BenchFileError

DEFAULT_FILE = "bench.yaml"
ENV = "SAFEBENCH_BENCH"
BOARD_KEYS = ("serial", "port", "interface", "type", "modem", "sim", "notes")
SIM_KEYS = ("iccid", "ca")
ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
ICCID = re.compile(r"^[0-9]{18,20}F?$")


@dataclass(frozen=True)
class BoardEntry:
    alias: str
    type: str
    serial: str | None = None
    port: str | None = None
    interface: int | None = None
    modem: str | None = None
    iccid: str | None = None
    ca: str | None = None
    notes: str | None = None


def bench_path(explicit=None):
    return Path(explicit or os.environ.get(ENV) or DEFAULT_FILE)


def load(path=None):
    """{alias: BoardEntry} from the bench file at `path` (see bench_path)."""
    path = bench_path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BenchFileError(f"no bench file at {path}: draft one with `safebench boards --write-bench {path}`, "
                             f"or give --bench FILE") from None
    except OSError as e:
        raise BenchFileError(f"cannot read the bench file {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise BenchFileError(f"{path}: not UTF-8 text (byte {e.start})") from None
    return parse(text, path.parent, str(path))


def parse(text, base_dir=".", source="bench file"):
    """Parse and check a bench file's text; relative paths in it are taken from `base_dir`."""
    import yaml

    try:
        doc = yaml.load(text, Loader=_unique_key_loader())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise BenchFileError(f"{source}: not valid YAML{where}: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("boards"), dict) or not doc["boards"]:
        raise BenchFileError(f"{source}: expected a mapping `boards:` of aliases to boards")
    if set(doc) - {"boards"}:
        raise BenchFileError(f"{source}: unknown top-level key(s) {', '.join(map(str, set(doc) - {'boards'}))}")
    entries = {}
    for alias, board in doc["boards"].items():
        entries[str(alias)] = _entry(str(alias), board, Path(base_dir), source)
    _check_unique(entries, source)
    return entries


def _entry(alias, board, base, source):
    from .board_definitions import board_types

    where = f"{source}: board {alias!r}"
    if not ALIAS.match(alias):
        raise BenchFileError(f"{where}: an alias is letters, digits, '_', '.', '-'")
    if not isinstance(board, dict):
        raise BenchFileError(f"{where}: expected a mapping with serial: or port:, and type:")
    unknown = [k for k in board if k not in BOARD_KEYS]
    if unknown:
        raise BenchFileError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(BOARD_KEYS)})")
    if ("serial" in board) == ("port" in board):
        raise BenchFileError(f"{where}: give exactly one of serial: (USB serial number) or port: (a path)")
    serial = board.get("serial")
    if "serial" in board and (not isinstance(serial, str) or not serial):
        raise BenchFileError(f"{where}: serial must be a quoted string (serial: \"...\"): unquoted, YAML reads "
                             f"digits as a number and loses leading zeros")
    port = board.get("port")
    if "port" in board and (not isinstance(port, str) or not port):
        raise BenchFileError(f"{where}: port must be a path, e.g. /dev/serial/by-path/...")
    interface = board.get("interface")
    if interface is not None and (type(interface) is not int or interface < 0 or "serial" not in board):
        raise BenchFileError(f"{where}: interface is a USB interface number (0, 2, ...) next to serial:")
    board_type = board.get("type")
    if not board_type or board_type not in board_types():
        raise BenchFileError(f"{where}: type must be one of {', '.join(board_types())} (got {board_type!r})")
    modem = board.get("modem")
    if modem is not None and (not isinstance(modem, str) or modem not in DIALECTS):
        raise BenchFileError(f"{where}: modem must be one of {', '.join(DIALECTS)} (got {modem!r})")
    iccid, ca = _sim(board.get("sim"), base, where)
    notes = board.get("notes")
    return BoardEntry(alias, board_type, serial, str(base / port) if port else None, interface, modem,
                      iccid, ca, None if notes is None else str(notes))


def _sim(sim, base, where):
    if sim is None:
        return None, None
    if not isinstance(sim, dict) or set(sim) - set(SIM_KEYS):
        raise BenchFileError(f"{where}: sim is a mapping with iccid: and/or ca:")
    iccid, ca = sim.get("iccid"), sim.get("ca")
    if iccid is not None and not (isinstance(iccid, str) and ICCID.match(iccid)):
        raise BenchFileError(f"{where}: sim.iccid must be a quoted string of 18 to 20 digits (got {iccid!r})")
    if ca is not None:
        path = base / str(ca)
        if not path.is_file():
            raise BenchFileError(f"{where}: sim.ca: no CA certificate at {path}")
        ca = str(path)
    return iccid, ca


def _check_unique(entries, source):
    seen = {}
    for e in entries.values():
        key = ("serial", e.serial, e.interface) if e.serial else ("port", os.path.abspath(e.port))
        if key in seen:
            raise BenchFileError(f"{source}: boards {seen[key]!r} and {e.alias!r} name the same {key[0]} {key[1]}")
        seen[key] = e.alias


def _unique_key_loader():
    """yaml's SafeLoader, except that a key given twice is an error instead of the last one winning."""
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            keys = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (list, dict)):
                    raise yaml.constructor.ConstructorError(None, None, f"a key is a name, not a {type(key).__name__}",
                                                            key_node.start_mark)
                if key in keys:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                keys.add(key)
            return super().construct_mapping(node, deep)

    return Loader


# ---- from an alias to a port ---------------------------------------------------------------------

def find_port(entry, lister=None):
    """The device path of the board `entry` names, by USB serial number (or its fixed port)."""
    from .usb_boards import ports_with_serial

    if entry.port:
        if not os.path.exists(entry.port):
            raise BenchFileError(f"board {entry.alias!r} is not connected: no port at {entry.port}")
        return entry.port
    ports = ports_with_serial(entry.serial, lister, entry.interface)
    what = f"USB serial {entry.serial}" + (f", interface {entry.interface}" if entry.interface is not None else "")
    if not ports:
        raise BenchFileError(f"board {entry.alias!r} ({what}) is not connected (`safebench boards` lists what is)")
    if len(ports) > 1:
        listed = ", ".join(f"{p.device} (location {p.location})" for p in ports)
        raise BenchFileError(f"board {entry.alias!r}: {what} matches {len(ports)} ports: {listed}; "
                             f"add interface: N (the N at the end of the location) to pick one")
    return ports[0].device


def lookup(alias, path=None, lister=None):
    """(BoardEntry, port) of `alias` in the bench file."""
    entries = load(path)
    if alias not in entries:
        raise BenchFileError(f"no board {alias!r} in {bench_path(path)} (it has: {', '.join(sorted(entries))})")
    entry = entries[alias]
    return entry, find_port(entry, lister)


def alias_of(entries, port_dict):
    """The alias naming a listed port (a dict from boards.connected), or None."""
    for e in entries.values():
        if e.serial and e.serial == port_dict.get("serial_number"):
            return e.alias
        if e.port and os.path.realpath(e.port) in {os.path.realpath(port_dict["port"]), port_dict.get("device")}:
            return e.alias
    return None


# ---- drafting one from what is connected ---------------------------------------------------------

def draft(found, path):
    """Write a bench file for the boards in `found` (boards.connected() dicts); never overwrites.

    A board whose type is not known (no probe, or no firmware on it) gets `type: ""` and a comment
    listing the candidates: the file does not load until someone who knows the wiring fills it in.
    """
    from .board_definitions import BOARD_CHIPS, chip_family

    path = Path(path)
    if path.exists():
        raise BenchFileError(f"{path} exists: not overwriting it")
    lines = ["# safebench bench file: drafted by `safebench boards --write-bench`; check every type: and modem:.",
             "boards:"]
    counts, written = {}, 0
    for b in found:
        if b["family"] in ("modem", "unknown") or not (b.get("serial_number") or b["simulated"]):
            continue
        family = b["family"]
        counts[family] = counts.get(family, 0) + 1
        alias = b.get("name") if b["simulated"] else f"{family}-{counts[family]}"
        board_type = b.get("board_type") or ""
        lines.append(f"  {alias}:")
        if b["simulated"]:
            lines.append(f"    port: {json.dumps(str(Path(b['port']).absolute()))}")
        else:
            lines.append(f"    serial: {json.dumps(b['serial_number'])}")
        candidates = [t for t, chip in sorted(BOARD_CHIPS.items()) if chip_family(chip) == family]
        hint = f"  # one of: {', '.join(candidates)}" if not board_type and candidates else ""
        lines.append(f"    type: {json.dumps(board_type)}{hint}")
        note = b.get("kind", "") + (f" at {b['port']}" if not b["simulated"] else "")
        lines.append(f"    notes: {json.dumps(note)}")
        written += 1
    if not written:
        raise BenchFileError("no boards to write: nothing with a USB serial number is connected, and no "
                             "simulated bench is up")
    path.write_text("\n".join(lines) + "\n")
    return {"bench_file": str(path), "drafted": written}
