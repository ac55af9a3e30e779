"""The firmware against SIMs laid out and behaving like the real cards traced in the IoT SAFE reference."""

import pytest

from safebench.pki import CertificateAuthority
from safebench.provision import bench_board_roles, new_sim_card, register_device
from safebench.readings import Registry, check
from safebench.signing import sign_and_verify


@pytest.mark.timeout(240)
@pytest.mark.parametrize("profile", ["thales-mvp", "zariot"])
def test_profile(own_board, tmp_path, profile):
    state = tmp_path / "bench"
    ca = CertificateAuthority.load_or_create(state / "ca")
    card = new_sim_card(tmp_path / "card.json", profile=profile, ca=ca)
    bench, board, dev = own_board(heap="96K", card=tmp_path / "card.json", state=state)
    roles = bench_board_roles(board)
    ids = {o["id"] for o in dev.call("sim.info")["objects"]}
    assert roles["signing_key"] in ids  # the object list parsed, quirks and all
    evidence = sign_and_verify(dev, b"profile " + profile.encode(), ca.cert, bytes.fromhex(roles["signing_key"]))
    assert evidence["iccid"] == card.iccid
    registry = Registry(tmp_path / "registry.json")
    register_device(dev, ca.cert, registry)
    verdict = check(bytes.fromhex(dev.call("reading")["cose"]), registry, ca.cert, {})
    assert verdict.ok, verdict.reason
    if roles["ephemeral_key"] and roles["ca_cert"]:  # a card with ECDHE containers does TLS too
        from safebench import tls

        assert tls.echo_with_host(dev, bench.dir, suites=("gcm",))["server"]["version"] == "TLSv1.3"
