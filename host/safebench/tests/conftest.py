import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def simulator_processes(under=""):
    """Simulator processes (board supervisors, VMs, modems) whose command line names `under`."""
    out = subprocess.run(["pgrep", "-af", "safebench_simulator|unixboard/sim_boot.py"], capture_output=True, text=True)
    pids = set()
    for line in out.stdout.splitlines():
        pid, _, cmd = line.partition(" ")
        if under in cmd and int(pid) != os.getpid():
            pids.add(int(pid))
    return pids


@pytest.fixture
def no_leftovers(tmp_path):
    """Fails the test if simulator processes it started (their files are under its tmp_path) outlive it."""
    yield
    deadline = time.monotonic() + 5  # a VM whose supervisor just went is killed by the kernel a moment later
    while simulator_processes(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert simulator_processes(str(tmp_path)) == set()


@pytest.fixture(scope="session")
def safebench_executable():
    """The `safebench` CLI installed next to this Python."""
    return str(Path(sys.executable).with_name("safebench"))


@pytest.fixture
def run_cli(tmp_path, safebench_executable):
    """run(*args, state=, env=, timeout=): the CLI in the test's tmp_path, with its own state folder unless given."""
    def run(*args, state=None, env=None, timeout=120):
        env = dict(os.environ, SAFEBENCH_STATE=str(state or tmp_path / "state"), **(env or {}))
        return subprocess.run([safebench_executable, *args], capture_output=True, text=True, timeout=timeout,
                              cwd=tmp_path, env=env)
    return run


@pytest.fixture
def start_cli(tmp_path, safebench_executable):
    """start(*args, state=): the CLI started in the test's tmp_path (a Popen with stdout and stderr piped), with
    SIGINT at its default, as a terminal's Ctrl-C finds it: a runner started in the background may ignore
    SIGINT, and a child would inherit that. Killed at the end of the test if it still runs."""
    started = []

    def start(*args, state=None):
        proc = subprocess.Popen([safebench_executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=tmp_path, env=dict(os.environ, SAFEBENCH_STATE=str(state or tmp_path / "state")),
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def simulated_board(tmp_path_factory):
    """A simulated board with the firmware deployed: {"state": dir, "port": its port, "ca": the bench CA}."""
    from safebench import deploy
    from safebench.simulated_bench import SimulatedBench

    state = tmp_path_factory.mktemp("bench")
    bench = SimulatedBench(state, attached=True)
    board = bench.up()["boards"][0]
    try:
        deploy.deploy(board["port"], board["type"], tmp_path_factory.mktemp("build"))
        yield {"state": state, "port": board["port"], "ca": state / "ca" / "ca.pem"}
    finally:
        bench.down()


class ReadingDevice:
    """Signs readings as the firmware composes them (COSE_Sign1, ES256, SenML numbered by epoch and seq) with
    a software key, and is registered in `state`'s registry with a certificate from `state`'s CA: the
    host's checks of readings without a board."""

    ICCID = "8944000000000000001"
    ES256 = b"\xa1\x01\x26"  # protected header {1: -7}

    def __init__(self, state):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        from safebench.pki import CertificateAuthority
        from safebench.readings import Registry

        self.ca = CertificateAuthority.load_or_create(state / "ca")
        self.key = ec.generate_private_key(ec.SECP256R1())
        point = self.key.public_key().public_bytes(serialization.Encoding.X962,
                                                   serialization.PublicFormat.UncompressedPoint)
        cert_der = self.ca.issue_device(point, self.ICCID).public_bytes(serialization.Encoding.DER)
        self.registry = Registry(state / "registry.json")
        self.kid = bytes.fromhex(self.registry.add(cert_der, self.ICCID))
        self.registry.save()

    def reading(self, epoch, seq, value=21.5, protected=ES256, unprotected=None):
        """The COSE_Sign1 bytes of one reading; `protected` and `unprotected` as given, for malformed ones."""
        import cbor2
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        payload = cbor2.dumps([{-2: f"urn:dev:iccid:{self.ICCID}:", 0: "temperature", 1: "Cel", 2: value},
                               {0: "epoch", 2: epoch}, {0: "seq", 2: seq}])
        r, s = decode_dss_signature(self.key.sign(cbor2.dumps(["Signature1", protected, b"", payload]),
                                                  ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return cbor2.dumps(cbor2.CBORTag(18, [protected, {4: self.kid} if unprotected is None else unprotected,
                                              payload, signature]))


@pytest.fixture
def reading_device(tmp_path):
    """A ReadingDevice registered in tmp_path/"state", the state folder `run_cli` uses."""
    return ReadingDevice(tmp_path / "state")
