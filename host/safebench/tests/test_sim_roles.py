"""The explicit override of the SIM's roles: `sim.json` as deploy writes it, checked before anything is built."""

import ast
import json

import pytest

from safebench import FIRMWARE_DIR, deploy
from safebench.errors import DeployError


def _firmware_names():
    """simroles.NAMES, read from the firmware's source as data."""
    for node in ast.parse((FIRMWARE_DIR / "core" / "simroles.py").read_text()).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["NAMES"]:
            return ast.literal_eval(node.value)
    raise AssertionError("no NAMES in simroles.py")


def test_deploy_knows_the_firmwares_roles():
    assert deploy.SIM_ROLES == _firmware_names()


def test_given_roles_become_sim_json(tmp_path):
    files = deploy.build("unix_sim", tmp_path, features=["core"], sim_roles={"signing_key": "0002", "ca_cert": ""})
    assert deploy.SIM_ROLES_FILE in files
    assert json.loads((tmp_path / deploy.SIM_ROLES_FILE).read_text()) == {"ca_cert": "", "signing_key": "0002"}
    assert deploy.SIM_ROLES_FILE not in deploy.build("unix_sim", tmp_path / "found", features=["core"])


@pytest.mark.parametrize("roles, needle", [
    ({"signing_kee": "01"}, "unknown role 'signing_kee'"),
    ({"signing_key": "0x02"}, "hex container ID"),
    ({"signing_key": 2}, "hex container ID"),
    (["signing_key"], "JSON object"),
])
def test_a_mistake_is_refused_before_building(tmp_path, roles, needle):
    with pytest.raises(DeployError, match=needle):
        deploy.build("unix_sim", tmp_path / "out", sim_roles=roles)
    assert not (tmp_path / "out").exists()
