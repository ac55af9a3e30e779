"""kill -9 at random moments never loses or corrupts the card image: it is always the old or the new state."""

import json
import os
import random
import select
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import serial
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from safebench_simulator.card import Card

KEY = b"\x01"
OPEN_AND_SELECT = b'ATE0\rAT+CSIM=10,"0070000001"\rAT+CSIM=24,"01A4040007A0000005590010"\r'
GENERATE_KEY_PAIR = b'AT+CSIM=16,"81B9000003840101"\r'  # container 01, on logical channel 1


def pair_is_consistent(card):
    """The stored public point is the one of the stored private scalar: no half-written key pair."""
    point = card._private_key(KEY).public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return point == card.public_key(KEY)


@pytest.mark.timeout(60)
def test_saving_in_a_loop_killed_at_random_moments(tmp_path):
    """Card.save itself: a writer that is SIGKILLed mid-save leaves the last or the next image."""
    path = tmp_path / "card.json"
    Card.new().save(path)
    writer = textwrap.dedent(f"""
        import sys
        from safebench_simulator.card import Card
        card = Card.load({str(path)!r})
        while True:
            point = card.generate_key_pair(b"\\x01").hex()
            print("saving", point, flush=True)
            card.save({str(path)!r})
            print("saved", point, flush=True)
    """)
    rng = random.Random(1234)
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
        first = proc.stdout.readline()
        while not first.startswith("saved "):  # started and saved once; from now on it saves every few ms
            first = proc.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.1))
        proc.send_signal(signal.SIGKILL)
        lines = [first, *proc.communicate()[0].splitlines()]
        fields = [line.split() for line in lines]
        fields = [f for f in fields if len(f) == 2 and len(f[1]) == 130]  # the last line may be cut short
        saved = [point for word, point in fields if word == "saved"]
        saving = [point for word, point in fields if word == "saving"]
        card = Card.load(path)  # never corrupt
        assert card.public_key(KEY).hex() in (saved[-1], saving[-1])  # the last saved or the one in flight
        assert pair_is_consistent(card)


def drive_until_killed(card_path, seconds):
    """A modem process generating key pairs as fast as it is asked, SIGKILLed ``seconds`` after its first
    answer (on a loaded machine the first one may take longer than that)."""
    proc = subprocess.Popen([sys.executable, "-m", "safebench_simulator.modem", "--card", str(card_path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = serial.Serial(json.loads(proc.stdout.readline())["port"], 115200, timeout=0.05)
        port.write(OPEN_AND_SELECT)
        answers, deadline, first_by = b"", None, time.monotonic() + 30
        while time.monotonic() < (deadline or first_by):
            port.write(GENERATE_KEY_PAIR)  # without waiting: the kill lands at any point of a command
            if select.select([port.fileno()], [], [], 0.002)[0]:
                answers += port.read(port.in_waiting or 1)
                if deadline is None and b"+CSIM" in answers:
                    deadline = time.monotonic() + seconds
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        port.close()
        return answers
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.timeout(90)
def test_modem_killed_mid_command(tmp_path):
    card_path = tmp_path / "card.json"
    Card.new().save(card_path)
    rng = random.Random(99)
    before = Card.load(card_path).public_key(KEY)
    changed = 0
    for _ in range(5):
        answers = drive_until_killed(card_path, rng.uniform(0.3, 0.6))
        assert b'+CSIM: 4,"61' in answers, answers[-200:]  # the applet answered some key generations
        card = Card.load(card_path)
        assert pair_is_consistent(card)
        changed += card.public_key(KEY) != before
        before = card.public_key(KEY)
        leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".card.json.")]
        assert all(p.suffix == ".tmp" for p in leftovers)  # at most a stray temp file, never a damaged image
    assert changed == 5  # every run did change the key: the test really exercised saving
