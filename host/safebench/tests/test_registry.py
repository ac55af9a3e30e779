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
