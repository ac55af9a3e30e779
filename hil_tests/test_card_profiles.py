"""The firmware against SIMs laid out and behaving like the real cards traced in the IoT SAFE reference: it
finds each card's roles on the card itself (no sim.json), then signs, reads and does TLS with them."""

import pytest

from safebench.pki import CertificateAuthority
from safebench.provision import new_sim_card, register_device
from safebench.readings import check
from safebench.registry import Registry
from safebench.signing import sign_and_verify


def _profile_roles(card):
    """{role: hex ID or None} as the card image's profile declares them (the firmware's roles)."""
    roles = {name: card.role(name) for name in ("signing_key", "client_cert", "ca_cert", "ephemeral_key", "peer_key",
                                                 "enrolment_key")}
    roles["signing_public_key"] = card.pair_of(roles["signing_key"])
    roles["enrolment_public_key"] = roles["enrolment_key"] and card.pair_of(roles["enrolment_key"])
    secret = card.role("secret")
    roles["secret"] = secret if secret and card.find("secret_key", id=secret).filled else None  # the seal's
    return {name: ref.hex().upper() if ref else None for name, ref in roles.items()}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("profile", ["generic", "thales-mvp", "zariot"])
def test_profile(own_board, tmp_path, profile):
    state = tmp_path / "bench"
    ca = CertificateAuthority.load_or_create(state / "ca")
    card = new_sim_card(tmp_path / "card.json", profile=profile, ca=ca)
    bench, board, dev = own_board(heap="96K", card=tmp_path / "card.json", state=state)
    found = dev.call("sim.roles")
    assert found["declared"] == []  # nothing told the board: it found the roles on the card
    assert found["roles"] == _profile_roles(card)  # what the profile says each container is for
    expected = found["roles"]
    evidence = sign_and_verify(dev, b"profile " + profile.encode(), ca.cert)
    assert evidence["iccid"] == card.iccid and evidence["key"] == expected["signing_key"]
    registry = Registry.of_state(tmp_path)
    register_device(dev, ca.cert, registry)
    verdict = check(bytes.fromhex(dev.call("reading")["cose"]), registry, ca.cert, {})
    assert verdict.ok, verdict.reason
    if expected["ephemeral_key"] and expected["ca_cert"]:  # a card with ECDHE containers does TLS too
        from safebench import tls

        assert tls.echo_with_host(dev, bench.dir, suites=("gcm",))["server"]["version"] == "TLSv1.3"


@pytest.mark.timeout(240)
@pytest.mark.parametrize("profile", ["generic", "thales-mvp", "zariot"])
def test_a_factory_card_of_each_profile_is_found_as_such(own_board, board, tmp_path, profile):
    """The bootstrap pair signs until enrolment, the empty operational key is the enrolment key (never the ECDHE
    one: on the Thales MVP card every key can agree keys)."""
    if board.get("emulated"):
        pytest.skip("a second emulated Pico costs minutes: role discovery is the same code on every board")
    state = tmp_path / "bench"
    ca = CertificateAuthority.load_or_create(state / "ca")
    card = new_sim_card(tmp_path / "card.json", profile=profile, ca=ca, factory=True)
    _, _, dev = own_board(card=tmp_path / "card.json", state=state)
    found = dev.call("sim.roles")["roles"]
    assert found == _profile_roles(card) and found["enrolment_key"] not in (None, found["ephemeral_key"])
