"""Card profiles: the applet layouts and behaviours of the IoT SAFE cards the simulator can be.

Real IoT SAFE cards disagree on details that clients must cope with (docs/iotsafe.md
§8). A profile names one combination: the applet AID, the containers it holds, the
switches where cards differ, the modem's reply style and a timing model. Profiles are JSON files
in ``profiles/`` (``generic``, ``thales-mvp``, ``zariot``); ``load`` reads one by name or path
and checks it completely, so a typo is an error rather than a silently ignored key.

Profile file shape (``"format": "safebench-profile/1"``)::

    {"format": ..., "name": ..., "description": ..., "source": ..., "aid": "<hex>",
     <switches, see SWITCHES>, "applet_info": {...}, "modem": {...}, "timing": {...},
     "containers": [{"kind": "private_key", "id": "<hex>", "label": "<text>",
                     "role": "signing_key", "attributes": {"<name>": "<hex>"}, "value": "generate"}]}

A container ``value`` is ``"generate"`` (a fresh P-256 pair for a private key and the public key
with the same label; 32 random bytes for a secret), ``""`` (empty) or hex content.

The card image keeps ``card_profile(doc)``: the name, the switches, ``applet_info``, ``modem``
and ``timing`` — so the applet, the UICC and the modem read their behaviour from the image.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

FORMAT = "safebench-profile/1"
PROFILE_DIR = Path(__file__).parent / "profiles"
DEFAULT = "generic"
REALTIME_ENV = "SAFEBENCH_SIM_REALTIME"  # "1": the UICC sleeps the modelled card latency

KINDS = ("private_key", "public_key", "file", "secret_key")
ROLE_KINDS = {
    "signing_key": "private_key",
    "client_cert": "file",
    "ca_cert": "file",
    "ephemeral_key": "private_key",
    "peer_key": "public_key",
    "secret": "secret_key",
    "enrolment_key": "private_key",  # a factory card's empty operational key, generated at enrolment
}
MAX_ID, MAX_LABEL = 20, 60  # bytes (Orange's limits; the spec allows "variable sizes")

# Switch name -> allowed values (a tuple) or a (type, min, max) range.
SWITCHES = {
    "cla": ("both", "proprietary", "interindustry"),
    "sig_length_form": (1, 2),
    "object_list_shape": ("unwrapped", "per_object", "per_class"),
    "object_list_chunk": (int, 16, 256),  # bytes of the object list per response; more -> SW 6300
    "quirk_92_02_04": (False, True),
    "applet_info_tags": ("object", "applet"),
    "single_object_info_wrapped": (False, True),
    "read_file_eof": ("strict", "zero_pad"),
    "t0": (False, True),
    "lenient_implicit_channel": (False, True),
    "max_sessions": (int, 1, 8),
    "vendor_version": None,  # hex answered to the vendor Get Version (8n 70 00 00), or null
}
APPLET_INFO_KEYS = ("version", "proprietary_id", "capacity", "functions", "hashes", "signatures",
                    "key_agreement", "key_derivation")
MODEM_KEYS = {"quoted_hex": bool, "space_after_colon": bool, "ccho_prefix": bool, "max_line": int,
              "baud": int}  # read by the modem
ATTRIBUTE_NAMES = ("access", "key_type", "key_usage", "file_usage", "functions", "signature", "hash",
                   "key_agreement", "key_derivation")


class ProfileError(ValueError):
    """A profile file or a card image's profile section is malformed."""


def names() -> list[str]:
    """The profiles shipped with the simulator."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.json"))


def load(name_or_path: str | os.PathLike = DEFAULT) -> dict:
    """A checked profile document, by shipped name or by the path of a JSON file."""
    text = str(name_or_path)
    path = Path(text) if (text.endswith(".json") or os.sep in text) else PROFILE_DIR / f"{text}.json"
    if not path.is_file():
        raise ProfileError(f"no card profile {text!r} (shipped: {', '.join(names())})")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ProfileError(f"{path}: {e}") from e
    check(doc, where=str(path))
    return doc


def card_profile(doc: dict) -> dict:
    """What a card image keeps of a profile: name, switches, applet info, modem and timing."""
    out = {"name": doc["name"]}
    out.update({name: doc[name] for name in SWITCHES})
    for section in ("applet_info", "modem", "timing"):
        out[section] = json.loads(json.dumps(doc[section]))  # a deep copy
    return out


def check_card_profile(section: dict, where: str = "card image") -> dict:
    """Check the ``profile`` section of a card image; returns it."""
    if not isinstance(section, dict):
        raise ProfileError(f"{where}: profile must be an object")
    expected = {"name", *SWITCHES, "applet_info", "modem", "timing"}
    _keys(section, expected, expected, where)
    if not isinstance(section["name"], str) or not section["name"]:
        raise ProfileError(f"{where}: profile name must be a non-empty string")
    _check_switches(section, where)
    return section


# -- checks -----------------------------------------------------------------------

def check(doc: dict, where: str = "profile") -> None:
    """Raise ProfileError unless ``doc`` is a complete, consistent profile."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ProfileError(f"{where}: not a {FORMAT} document")
    required = {"format", "name", "aid", *SWITCHES, "applet_info", "modem", "timing", "containers"}
    _keys(doc, required, required | {"description", "source"}, where)
    if not isinstance(doc["name"], str) or not doc["name"]:
        raise ProfileError(f"{where}: name must be a non-empty string")
    _hex(doc["aid"], f"{where}: aid", 5, 16)
    _check_switches(doc, where)
    _check_containers(doc["containers"], where)


def _check_switches(doc: dict, where: str) -> None:
    for name, allowed in SWITCHES.items():
        value = doc[name]
        if name == "vendor_version":
            if value is not None:
                _hex(value, f"{where}: vendor_version", 1, 255)
        elif isinstance(allowed, tuple) and allowed and allowed[0] is int:
            if type(value) is not int or not allowed[1] <= value <= allowed[2]:
                raise ProfileError(f"{where}: {name} must be an integer {allowed[1]}..{allowed[2]}")
        elif value not in allowed or type(value) is not type(allowed[0]):
            raise ProfileError(f"{where}: {name} must be one of {list(allowed)}, not {value!r}")
    _check_applet_info(doc["applet_info"], where)
    _check_modem(doc["modem"], where)
    check_timing(doc["timing"], where)


def _check_applet_info(info: dict, where: str) -> None:
    where = f"{where}: applet_info"
    _keys(info, set(APPLET_INFO_KEYS), set(APPLET_INFO_KEYS), where)
    _hex(info["version"], f"{where}.version", 1, 1)
    _hex(info["proprietary_id"], f"{where}.proprietary_id", 32, 32)
    _keys(info["capacity"], set(KINDS), set(KINDS), f"{where}.capacity")
    for kind, n in info["capacity"].items():
        if type(n) is not int or not 0 <= n <= 255:
            raise ProfileError(f"{where}.capacity.{kind} must be 0..255")
    _hex(info["hashes"], f"{where}.hashes", 2, 2)
    for name in ("functions", "signatures", "key_agreement", "key_derivation"):
        _hex(info[name], f"{where}.{name}", 1, 1)


def _check_modem(modem: dict, where: str) -> None:
    _keys(modem, set(MODEM_KEYS), set(MODEM_KEYS), f"{where}: modem")
    for name, kind in MODEM_KEYS.items():
        if type(modem[name]) is not kind:
            raise ProfileError(f"{where}: modem.{name} must be {kind.__name__}")
    if not 40 <= modem["max_line"] <= 4096 or modem["baud"] <= 0:
        raise ProfileError(f"{where}: modem.max_line must be 40..4096 and modem.baud positive")


def check_timing(timing: dict, where: str = "timing") -> None:
    _keys(timing, {"baud", "latency_ms"}, {"baud", "latency_ms"}, f"{where}: timing")
    if type(timing["baud"]) is not int or timing["baud"] <= 0:
        raise ProfileError(f"{where}: timing.baud must be a positive integer")
    latency = timing["latency_ms"]
    if not isinstance(latency, dict) or "default" not in latency:
        raise ProfileError(f"{where}: timing.latency_ms needs a 'default'")
    for ins, ms in latency.items():
        if ins != "default":
            _hex(ins, f"{where}: timing.latency_ms key", 1, 1)
        if type(ms) not in (int, float) or ms < 0:
            raise ProfileError(f"{where}: timing.latency_ms.{ins} must be a non-negative number")


def _check_containers(containers: list, where: str) -> None:
    if not isinstance(containers, list) or not containers:
        raise ProfileError(f"{where}: containers must be a non-empty list")
    seen_ids, seen_labels, roles = set(), set(), set()
    for n, c in enumerate(containers):
        at = f"{where}: containers[{n}]"
        _keys(c, {"kind", "id", "label", "attributes", "value"},
              {"kind", "id", "label", "attributes", "value", "role"}, at)
        kind = c["kind"]
        if kind not in KINDS:
            raise ProfileError(f"{at}: kind must be one of {list(KINDS)}")
        object_id = _hex(c["id"], f"{at}.id", 1, MAX_ID)
        if not isinstance(c["label"], str) or len(c["label"].encode()) > MAX_LABEL:
            raise ProfileError(f"{at}: label must be text of at most {MAX_LABEL} bytes")
        if (kind, object_id) in seen_ids or (c["label"] and (kind, c["label"]) in seen_labels):
            raise ProfileError(f"{at}: id or label used twice for {kind}")
        seen_ids.add((kind, object_id))
        seen_labels.add((kind, c["label"]))
        if not isinstance(c["attributes"], dict) or set(c["attributes"]) - set(ATTRIBUTE_NAMES):
            raise ProfileError(f"{at}: attributes must use names from {list(ATTRIBUTE_NAMES)}")
        for name, value in c["attributes"].items():
            _hex(value, f"{at}.attributes.{name}", 1, 2)
        _check_value(c, kind, at)
        role = c.get("role")
        if role is not None:
            if ROLE_KINDS.get(role) != kind or role in roles:
                raise ProfileError(f"{at}: role {role!r} unknown, used twice or not a {kind} role")
            roles.add(role)
    for c in containers:  # a generated pair needs its public half: the public key with the same label
        if c["kind"] == "private_key" and c["value"] == "generate" and not any(
                p["kind"] == "public_key" and p["label"] == c["label"] and c["label"] for p in containers):
            raise ProfileError(f"{where}: private key {c['id']} has no public key labelled {c['label']!r}")


def _check_value(c: dict, kind: str, at: str) -> None:
    value = c["value"]
    if value == "generate":
        if kind not in ("private_key", "secret_key"):
            raise ProfileError(f"{at}: only private keys and secrets can be generated")
        return
    _hex(value, f"{at}.value", 0, 0xFFFF)
    if value and kind in ("private_key", "public_key"):
        raise ProfileError(f"{at}: key values are generated on the card, never written in a profile")


def _keys(doc: dict, required: set, allowed: set, where: str) -> None:
    if not isinstance(doc, dict):
        raise ProfileError(f"{where}: must be an object")
    missing, unknown = required - set(doc), set(doc) - allowed
    if missing or unknown:
        raise ProfileError(f"{where}: missing {sorted(missing)}, unknown {sorted(unknown)}")


def _hex(value: object, where: str, min_len: int, max_len: int) -> bytes:
    try:
        raw = bytes.fromhex(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ProfileError(f"{where}: not hex: {value!r}") from None
    if not min_len <= len(raw) <= max_len:
        raise ProfileError(f"{where}: {len(raw)} bytes, expected {min_len}..{max_len}")
    return raw


# -- timing model -----------------------------------------------------------------

def realtime_from_env() -> bool:
    return os.environ.get(REALTIME_ENV, "") not in ("", "0")
