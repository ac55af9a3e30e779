"""The registry in the rig's database: a JSON registry of an earlier version is moved in once, keeping what
was accepted; a database URL the rig does not know is one line."""

import json

import pytest

from safebench.database import open_database
from safebench.errors import DatabaseError
from safebench.registry import Registry


def test_a_json_registry_is_migrated_once(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    legacy = {"ab" * 32: {"iccid": "8944000000000000001", "certificate": "3082", "epoch": 7, "last_seq": 41}}
    (state / "registry.json").write_text(json.dumps(legacy))
    with Registry.of_state(state) as reg:
        assert reg.accepted() == {"ab" * 32: (7, 41)} and reg.devices["ab" * 32]["iccid"] == "8944000000000000001"
    assert not (state / "registry.json").exists() and (state / "registry.json.migrated").exists()
    (state / "registry.json.migrated").rename(state / "registry.json")  # a crash before the rename: again
    legacy["ab" * 32]["last_seq"] = 3
    (state / "registry.json").write_text(json.dumps(legacy))
    with Registry.of_state(state) as reg:
        assert reg.accepted() == {"ab" * 32: (7, 41)}  # the later window stays


def test_windows_are_saved_and_revocation_is_kept(tmp_path):
    with Registry.of_state(tmp_path) as reg:
        kid = reg.add(b"\x30\x82", "8944000000000000002")
        reg.accepted()[kid] = (9, 2)
        reg.save()
        assert reg.revoke(kid) and not reg.revoke("00" * 32)
    with Registry.of_state(tmp_path) as reg:
        reg.add(b"\x30\x82", "8944000000000000002")  # provisioned again
        assert reg.accepted() == {kid: (9, 2)} and reg.devices[kid]["revoked_at"] is not None


def test_an_unknown_database_url_is_one_line(tmp_path):
    with pytest.raises(DatabaseError, match="mysql: not a database this rig knows"):
        open_database("mysql://x@localhost/db")
    with pytest.raises(DatabaseError, match=r"cannot connect to the database postgresql://u:\*\*\*@127.0.0.1:1/x"):
        open_database("postgresql://u:secret@127.0.0.1:1/x")


def test_a_database_of_schema_1_gains_the_board_binding(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:  # what safebench wrote before boards were bound
        old.executescript("""
            CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);
            CREATE TABLE devices (kid TEXT PRIMARY KEY, iccid TEXT NOT NULL, certificate BLOB NOT NULL,
                epoch BIGINT NOT NULL DEFAULT 0, last_seq BIGINT NOT NULL DEFAULT 0,
                registered_at DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION);
            INSERT INTO devices VALUES ('ab', '8944000000000000003', x'3082', 4, 5, 0, NULL);""")
    with Registry(open_database(path)) as reg:
        assert reg.devices["ab"]["board_id"] is None and reg.accepted() == {"ab": (4, 5)}
        reg.bind("ab", "E6605838832B2C2E")
    with Registry(open_database(path)) as reg:
        assert reg.devices["ab"]["board_id"] == "E6605838832B2C2E"
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(2,)]


def test_a_bound_identity_verifies_only_from_its_board(reading_device):
    from safebench.readings import MALFORMED, MOVED_SIM, VERIFIED, check

    registry, ca, epoch = reading_device.registry, reading_device.ca.cert, 1_780_000_000

    def verdict(seq, board):
        return check(reading_device.reading(epoch, seq, board=board), registry, ca, {})

    assert verdict(1, "0A0B").code == verdict(2, None).code == VERIFIED  # bound to no board: from any
    registry.bind(reading_device.kid.hex(), "E6605838832B2C2E")
    assert verdict(3, "E6605838832B2C2E").code == VERIFIED
    moved, unnamed = verdict(4, "0A0B"), verdict(5, None)
    assert moved.code == unnamed.code == MOVED_SIM and "0A0B" in moved.reason and "does not name" in unnamed.reason
    assert verdict(6, "e660").code == MALFORMED  # the board's ID is upper-case hex, as the firmware writes it
    registry.bind(reading_device.kid.hex(), None)
    other = registry.add(b"the certificate of another SIM", "8988211000000000002")
    registry.bind(other, "E6605838832B2C2E")  # that board's SIM is another
    flagged = verdict(7, "E6605838832B2C2E")
    assert flagged.code == MOVED_SIM and "another SIM in board E6605838832B2C2E" in flagged.reason, flagged.reason
    assert verdict(8, "0A0B").code == VERIFIED  # an unbound identity from a board no SIM is bound to
