"""A SIM that leaves its board is noticed on the host: every reading names the board it was taken on (the MCU's
unique ID, inside what the SIM signs), provisioning binds the SIM's identity to its board, and a reading of
that identity from any other board is rejected (verdict moved-sim, checked with pycose and cryptography)
until the operator binds it again (`safebench bind`)."""

import shutil

import cbor2
import pytest
from pycose.messages import CoseMessage

from safebench.errors import ProvisionError
from safebench.provision import register_device
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
