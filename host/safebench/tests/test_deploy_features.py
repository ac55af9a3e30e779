"""Deploy follows the feature manifests (firmware/*/manifest.py): only the chosen features' modules land on
a board, and a board without a feature says so when asked for its methods."""

import pytest
from cryptography import x509

from safebench import FIRMWARE_DIR, deploy
from safebench.device import Device
from safebench.errors import DeployError, RpcError
from safebench.provision import register_device
from safebench.readings import check
from safebench.registry import Registry
from safebench.rpc_codes import METHOD_NOT_FOUND
from safebench.simulated_bench import SimulatedBench

FEATURES = ["core", "enrolment", "mqtt", "readings", "tls"]


def _own_modules(feature):
    return {target for target in deploy.feature_modules([feature]) if target not in deploy.feature_modules([])}


def test_the_features_are_the_folders_with_a_manifest():
    assert deploy.features() == FEATURES


@pytest.mark.parametrize("feature", FEATURES)
def test_every_module_of_a_feature_folder_is_in_its_manifest(feature):
    named = {src.name for src in deploy.feature_modules([feature]).values() if src.parent.name == feature}
    present = {p.name for p in (FIRMWARE_DIR / feature).glob("*.py") if p.name != "manifest.py"}
    assert named == present


def test_readings_only_image_has_no_tls_module(tmp_path):
    files = deploy.build("unix_sim", tmp_path, features=["readings"])
    tls_modules = {f"lib/{m.removesuffix('.py')}.mpy" for m in _own_modules("tls")}
    assert {"lib/tls13.mpy", "lib/tls_rpc.mpy", "lib/simkeys.mpy"} <= tls_modules
    assert not tls_modules & set(files)
    assert {"main.py", "board.mpy", "lib/board_common.mpy", "lib/service.mpy", "lib/reading_rpc.mpy",
            "lib/cbor.mpy"} <= set(files)
    assert len(files) == 3 + len(deploy.feature_modules(["readings"]))
    everything = deploy.build("unix_sim", tmp_path / "all")
    assert set(files) < set(everything) and "lib/tls_rpc.mpy" in everything  # None: every feature, as before


def test_unknown_feature_is_a_clear_error(tmp_path):
    with pytest.raises(DeployError, match=r"unknown feature 'gps'; the firmware's features: core, enrolment, mqtt, readings, tls"):
        deploy.build("unix_sim", tmp_path, features=["readings", "gps"])


def _firmware(tmp_path, manifests):
    for path, text in manifests.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return tmp_path


def test_manifests_are_held_to_manifestfile_rules(tmp_path, monkeypatch):
    firmware = _firmware(tmp_path, {
        "core/manifest.py": 'metadata(version="1")\nmodule("a.py")\n', "core/a.py": "",
        "x/manifest.py": 'metadata(version="1")\nrequire("core")\nmodule("b.py")\n', "x/b.py": "",
        "y/manifest.py": 'metadata(version="1")\nrequire("core")\nrequire("x")\ninclude("more")\n',
        "y/more/manifest.py": 'module("c.py")\n', "y/more/c.py": "", "y/b.py": ""})
    monkeypatch.setattr(deploy, "FIRMWARE_DIR", firmware)
    assert list(deploy.feature_modules(["y"])) == ["a.py", "b.py", "c.py"]  # core once, though asked for thrice
    (firmware / "x/manifest.py").write_text('metadata(version="1")\ninclude("../core")\n')
    with pytest.raises(DeployError, match="a second metadata"):  # MicroPython's manifestfile.py refuses it too
        deploy.feature_modules(["x"])
    (firmware / "x/manifest.py").write_text('metadata(version="1")\nmodule("b.py")\n')
    (firmware / "y/more/manifest.py").write_text('module("b.py", base_path="..")\n')
    (firmware / "y/manifest.py").write_text('metadata(version="1")\nrequire("x")\ninclude("more")\n')
    with pytest.raises(DeployError, match="is named twice"):
        deploy.feature_modules(["y"])
    (firmware / "x/manifest.py").write_text('module("b.py")\n')
    with pytest.raises(DeployError, match="metadata\\(\\) must come first"):
        deploy.feature_modules(["x"])


@pytest.mark.timeout(120)
def test_a_board_with_readings_only_signs_readings_and_has_no_tls(tmp_path):
    bench = SimulatedBench(tmp_path / "state", attached=True)
    board = bench.up()["boards"][0]
    try:
        deploy.deploy(board["port"], board["type"], tmp_path / "build")  # every feature first
        res = deploy.deploy(board["port"], board["type"], tmp_path / "build", features=["readings"])
        assert "lib/tls_rpc.mpy" in res["removed"] and "lib/reading_rpc.mpy" in res["files"]
        with Device(board["port"], timeout=15) as dev:
            dev.connect(reboot=True)
            ca = x509.load_pem_x509_certificate((tmp_path / "state" / "ca" / "ca.pem").read_bytes())
            registry = Registry.of_state(tmp_path)
            register_device(dev, ca, registry)
            verdict = check(bytes.fromhex(dev.call("reading")["cose"]), registry, ca, {})
            assert verdict.ok, verdict.reason
            with pytest.raises(RpcError) as e:
                dev.call("tls.echo", host="127.0.0.1", port=4433)
            assert e.value.code == METHOD_NOT_FOUND and e.value.data == {"feature": "tls"}
            assert "method tls.echo needs the tls feature, which is not deployed on this board" in str(e.value)
            assert dev.call("info")["firmware"]  # and it keeps serving
    finally:
        bench.down()
