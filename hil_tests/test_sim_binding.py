"""A SIM that leaves its board is noticed on the host: every reading names the board it was taken on (the MCU's
unique ID, inside what the SIM signs), provisioning binds the SIM's identity to its board, and a reading of
that identity from any other board is rejected (verdict moved-sim, checked with pycose and cryptography)
until the operator binds it again (`safebench bind`)."""

import json
import shutil

import cbor2
import pytest
from pycose.messages import CoseMessage

from safebench.binding import bind_board, operator_key
from safebench.errors import BindingError, ProvisionError, SimReplaced
from safebench.pki import CA_CERT, CA_KEY, CertificateAuthority
from safebench.provision import new_sim_card, register_device
from safebench.readings import MOVED_SIM, check
from safebench.registry import Registry


def _board_named(cose):
    """The board ID the reading's SenML names, read with pycose and cbor2 (not the rig's parser)."""
    pack = cbor2.loads(CoseMessage.decode(cose).payload)
    return [r[3] for r in pack if r.get(0) == "board"]


def test_every_reading_names_its_board(simulated_bench, device, ca_cert, tmp_path):
    board_id = device.call("info")["board_id"]
    assert len(board_id) >= 12 and all(c in "0123456789ABCDEF" for c in board_id), board_id  # 6+ bytes, hex
    if simulated_bench is not None:  # the silicon ID the bench keeps beside the board's flash: on an emulated
        # Pico, MicroPython read it from the flash chip (command 4Bh), as on a real RP2040
        flash = simulated_bench.board()["flash"]
        assert board_id == open(f"{flash}.id").read().strip().upper()
    registry = Registry.of_state(tmp_path)
    registered = register_device(device, ca_cert, registry)
    assert registered["board_id"] == board_id and registry.devices[registered["kid"]]["board_id"] == board_id
    taken = device.call("reading")
    cose = bytes.fromhex(taken["cose"])
    assert taken["board"] == board_id and _board_named(cose) == [board_id]
    verdict = check(cose, registry, ca_cert, {})
    assert verdict.ok and verdict.board == board_id, verdict.reason


def test_the_bound_sim_on_a_second_board_signs_nothing_that_verifies(simulated, board, device, own_board,
                                                                     ca_cert, tmp_path):
    """The thief's case: the SIM of the session's board, bound to it, is put into another board."""
    if board.get("emulated"):
        pytest.skip("a second emulated Pico costs minutes: the simulated boards show the move, the emulated Pico "
                    "that its readings name its real unique ID (test_every_reading_names_its_board)")
    registry = Registry.of_state(tmp_path / "registry")
    home = register_device(device, ca_cert, registry)
    stolen = tmp_path / "stolen-card.json"
    shutil.copyfile(simulated.board()["card"], stolen)  # the same SIM: its applet, keys and certificate
    _, _, thief = own_board(card=stolen)
    thief_id = thief.call("info")["board_id"]
    assert thief_id != home["board_id"]

    verdicts = [check(bytes.fromhex(thief.call("reading")["cose"]), registry, ca_cert, registry.accepted())
                for _ in range(3)]
    assert [v.code for v in verdicts] == [MOVED_SIM] * 3 and all(v.kid == home["kid"] for v in verdicts)
    assert home["board_id"] in verdicts[0].reason and thief_id in verdicts[0].reason
    with pytest.raises(ProvisionError, match="a moved SIM"):
        register_device(thief, ca_cert, registry)  # provisioning does not quietly re-bind it
    assert check(bytes.fromhex(device.call("reading")["cose"]), registry, ca_cert, registry.accepted()).ok

    moved = register_device(thief, ca_cert, registry, rebind=True)  # `safebench bind`: the operator moved it
    assert moved["bound_before"] == home["board_id"] and moved["board_id"] == thief_id
    assert check(bytes.fromhex(thief.call("reading")["cose"]), registry, ca_cert, registry.accepted()).ok
    back_home = check(bytes.fromhex(device.call("reading")["cose"]), registry, ca_cert, registry.accepted())
    assert back_home.code == MOVED_SIM, back_home.reason


def _put_card(fault, path, image):
    """Pull the SIM, put the card `image` where the modem reads its card, insert it (URC +CPIN: READY)."""
    fault.sim_remove()
    shutil.copyfile(image, path)
    fault.sim_insert()


@pytest.mark.timeout(600)
def test_another_sim_in_the_bound_board_signs_nothing_until_the_operator_binds_it(
        simulated, device, fault, board_files, tmp_path):
    """The board's side: bound at provisioning in a record its SIM signed; a second card inserted gets "SIM
    replaced" for every reading, a record changed in flash is not trusted, and only the operator's key moves it."""
    card = simulated.board()["card"]
    home_card = shutil.copyfile(card, tmp_path / "home-card.json")
    ca = CertificateAuthority.load(simulated.dir / "ca" / CA_CERT, simulated.dir / "ca" / CA_KEY)
    second = new_sim_card(tmp_path / "second-card.json", ca=ca)
    operator = operator_key(tmp_path / "state")
    try:
        first = bind_board(device, operator)
        assert first["state"] == "bound" and first["bound"]["generation"] == 1
        assert first["bound"]["board"] == device.call("info")["board_id"]
        assert device.call("reading")["seq"]

        _put_card(fault, card, tmp_path / "second-card.json")
        for _ in range(2):  # every reading, not only the first after the swap
            with pytest.raises(SimReplaced, match="SIM replaced") as refused:
                device.call("reading")
        assert refused.value.data["present"]["iccid"] == second.iccid
        status = device.call("binding.status")
        assert status["state"] == "sim-replaced" and status["sim"]["iccid"] == second.iccid
        with pytest.raises(ProvisionError, match="safebench bind"):
            bind_board(device, operator)  # provisioning does not move it
        with pytest.raises(BindingError, match="operator key"):
            bind_board(device, operator_key(tmp_path / "someone-else"), move=True)
        moved = bind_board(device, operator, move=True)
        assert moved["state"] == "bound" and moved["bound"]["generation"] == 2
        assert moved["bound"]["iccid"] == second.iccid and device.call("reading")["seq"]

        _put_card(fault, card, home_card)  # the first SIM back: bound no more
        with pytest.raises(SimReplaced):
            device.call("reading")
        assert bind_board(device, operator, move=True)["bound"]["generation"] == 3

        record = json.loads(board_files(device.port).read("binding.json"))
        board_files(device.port).write("binding.json", json.dumps(dict(record, generation=4)))  # an edit in flash
        device.reboot()
        with pytest.raises(BindingError, match="not signed by this SIM"):
            device.call("reading")
        assert device.call("binding.status")["state"] == "untrusted"
    finally:
        if fault.status()["sim"] != "removed":
            fault.sim_remove()
        shutil.copyfile(home_card, card)
        fault.sim_insert()
        board_files(device.port).remove("binding.")  # the session's board is unbound again for the tests after
        device.reboot()
    assert device.call("binding.status")["state"] == "unbound"
