# Which container of the SIM does what (docs/iotsafe.md §7). Found on the card itself (role_discovery.py,
# imported for the search and let go after it) the first time a role is needed; `sim.json` on the board's
# flash, e.g. {"signing_key": "0002"} (written by `safebench deploy --sim-roles FILE`), overrides it: a role
# it names is taken as given ("" for none), the others are found around it.
import gc
import sys
from binascii import unhexlify

from apdu import CardError
from rpc_codes import E_NO_ROLE

NAMES = ("signing_key", "signing_public_key", "client_cert", "ca_cert", "ephemeral_key", "peer_key")
# Found too, but a sim.json that names NAMES need not name these: a factory SIM's empty key container, made at
# enrolment (docs/enrolment.md; a card not in factory state has none), and the secret the board's state in
# flash is sealed with (flash_seal.py).
OPTIONAL = ("enrolment_key", "enrolment_public_key", "secret")
# The common Thales / wolfSSL layout (§7.3): what a card without an object list is taken to hold.
GENERIC = {"signing_key": b"\x01", "signing_public_key": b"\x01", "client_cert": b"\x02", "ca_cert": b"\x03",
           "ephemeral_key": b"\x04", "peer_key": b"\x05"}
_IDENTITY = ("signing_key", "signing_public_key", "client_cert")  # what an enrolled identity replaces
_NO_OBJECT_LIST = (0x6D00, 0x6A81, 0x6A86)  # instruction, function or P1-P2 not supported


class NoRoleError(Exception):
    """The SIM has no container for the role a method needs: none found on the card, none in sim.json."""

    code = E_NO_ROLE

    def __init__(self, role, hint=""):
        self.data = {"role": role}
        super().__init__("this SIM has no %s: none found on the card, none in sim.json%s" % (role, hint))


class Roles:
    """{role: container ID} of one SIM; a role it lacks raises NoRoleError. `declared`: the names from sim.json."""

    def __init__(self, ids, declared=()):
        self.ids = ids
        self.declared = declared
        # Per SIM session, with the roles: the identity it was enrolled with (enrolled_identity.apply), or the
        # StoreError of one it did not vouch for; the key of the board's state in flash (flash_seal.key, False:
        # not derived yet).
        self.enrolled = self.unusable = None
        self.seal_key = False

    def __getitem__(self, name):
        if self.unusable is not None and name in _IDENTITY:
            raise self.unusable  # never the bootstrap key in its place
        ref = self.ids.get(name)
        if ref is None:
            raise NoRoleError(name)
        return ref

    def get(self, name):
        return self.ids.get(name)


def declared(path="sim.json"):
    """The roles `path` names ({role: ID, or None where it says ""}); {} without the file."""
    try:
        with open(path) as f:
            import json

            given = json.load(f)
    except OSError:
        return {}
    return {name: (unhexlify(hex_id) if hex_id else None) for name, hex_id in given.items()}


def find(card, files, path="sim.json"):
    """The roles of the SIM behind `card` (an open iotsafe.IoTSafe): sim.json's, the rest from the card.

    Files read on the way are left in `files` ({ID: bytes}, the session's cache)."""
    given = declared(path)
    if all(name in given for name in NAMES):
        return Roles(given, tuple(given))
    try:
        import role_discovery

        ids = role_discovery.discover(card, files, given)
    except CardError as e:
        if e.sw not in _NO_OBJECT_LIST:
            raise
        ids = dict(GENERIC)
    finally:
        sys.modules.pop("role_discovery", None)  # one search per boot: its code need not stay on the heap
    ids.update(given)
    # What is kept (the IDs, the certificate read on the way) was made amid the search's garbage: copied
    # after a collection, it lands low in the heap instead of leaving islands that split the free space.
    gc.collect()
    kept = [(_copy(ref), _copy(data)) for ref, data in files.items()]
    files.clear()
    files.update(kept)
    return Roles({name: _copy(ref) for name, ref in ids.items()}, tuple(given))


def _copy(b):
    return None if b is None else bytes(bytearray(b))
