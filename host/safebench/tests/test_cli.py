"""Failures are one clear line and a non-zero exit; the demo runs end to end and cleans up."""

import json

import pytest


def test_no_bench_is_a_clear_error(run_cli):
    res = run_cli("sign")
    assert res.returncode == 1
    assert res.stderr.strip().count("\n") == 0
    assert "no simulated board" in res.stderr and "bench up" in res.stderr


def test_port_without_board_type(run_cli):
    res = run_cli("info", "--port", "/dev/null")
    assert res.returncode == 1 and "--board-type" in res.stderr


def test_missing_port(run_cli):
    res = run_cli("info", "--port", "/dev/does-not-exist", "--board-type", "unix_sim")
    assert res.returncode == 1 and "cannot open /dev/does-not-exist" in res.stderr


@pytest.mark.timeout(180)
def test_demo(run_cli, no_leftovers):
    res = run_cli("demo")
    assert res.returncode == 0, res.stdout + res.stderr
    for words in ("serial", "ICCID", "key ID", "subject", "signature verified", "seq   5", "verified",
                  "tampered copy of the last one: rejected: bad signature", "replay: seq 5 of epoch", "Bench down"):
        assert words in res.stdout


@pytest.mark.timeout(120)
def test_ctrl_c_during_demo_leaves_nothing(tmp_path, no_leftovers, start_cli):
    import signal

    demo = start_cli("demo")
    for line in demo.stdout:
        if b"Deploying" in line:  # the bench is up: interrupt in the middle of the work
            break
    demo.send_signal(signal.SIGINT)
    out, err = demo.communicate(timeout=60)
    assert demo.returncode == 130, err
    assert b"interrupted" in err
    assert not (tmp_path / "state" / "bench.json").exists()


@pytest.mark.timeout(180)
def test_demo_on_a_board_it_did_not_start(run_cli, tmp_path, no_leftovers):
    """`demo --port P --board-type T --ca C`: the same demonstration on a given board (here a simulated one)."""
    from safebench.simulated_bench import SimulatedBench

    bench = SimulatedBench(tmp_path / "lab", attached=True)
    board = bench.up()["boards"][0]
    try:
        res = run_cli("demo", "--port", board["port"], "--board-type", "unix_sim",
                      "--ca", str(bench.dir / "ca" / "ca.pem"))
    finally:
        bench.down()
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Real board unix_sim" in res.stdout and "signature verified" in res.stdout
    assert "Bringing up" not in res.stdout and "seq   5" in res.stdout


def test_both_spellings(run_cli):
    """`sim modem` is the old spelling of `simulate modem`; `--bench FILE` of `--bench-file FILE`."""
    for group in ("simulate", "sim"):
        res = run_cli(group, "modem", "--card", "none.json")
        assert res.returncode == 1 and "safebench card new --out none.json" in res.stderr
    for option in ("--bench-file", "--bench"):
        res = run_cli("info", "--board", "lab1", option, "lab.yaml")
        assert res.returncode == 1 and "no bench file at" in res.stderr and "lab.yaml" in res.stderr


# ---- card new --factory ---------------------------------------------------------------------------

def test_card_new_factory_reports_the_bootstrap_identity_and_the_empty_operational_key(run_cli, tmp_path):
    from safebench.pki import CertificateAuthority
    from safebench_simulator.card import Card

    res = run_cli("card", "new", "--factory", "--out", "x.json", "--json")
    assert res.returncode == 0, res.stderr
    made, card = json.loads(res.stdout), Card.load(tmp_path / "x.json")
    assert made["factory"] is True and made["iccid"] == card.iccid
    # generic: the bootstrap pair and its certificate after the profile's 01..06, the profile's key 01 empty
    assert {name: made["roles"][name] for name in ("signing_key", "client_cert", "ca_cert", "enrolment_key")} == \
        {"signing_key": "07", "client_cert": "08", "ca_cert": "03", "enrolment_key": "01"}
    assert made["public_key"] == card.public_key(b"\x07").hex().upper() and card.public_key(b"\x01") == b""
    assert made["subject"].startswith(f"CN={card.iccid},")  # the ICCID the EST server reads
    bench_ca = CertificateAuthority.load_or_create(tmp_path / "state" / "ca")  # made by the command
    assert made["issuer"] == bench_ca.cert.subject.rfc4514_string()


def test_card_new_factory_with_a_manufacturer_ca_of_its_own(run_cli, tmp_path):
    """A CA made here with cryptography alone, not by safebench: the bootstrap certificate must chain to it."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from safebench_simulator.card import Card

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test manufacturer CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(key, hashes.SHA256()))
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "ca.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    res = run_cli("card", "new", "--factory", "--profile", "zariot", "--out", "x.json", "--ca-cert", "ca.pem",
                  "--ca-key", "ca.key")
    assert res.returncode == 0, res.stderr
    assert "bootstrap key 303130" in res.stdout and "operational key 303036 empty" in res.stdout
    card = Card.load(tmp_path / "x.json")
    bootstrap = x509.load_der_x509_certificate(card.file(card.role("client_cert")))
    bootstrap.verify_directly_issued_by(ca)
    assert not (tmp_path / "state").exists()  # the bench CA was not needed


# ---- read | verify -------------------------------------------------------------------------------

E1 = 1764061500


def _readings_file(path, *lines):
    import base64

    path.write_bytes(b"".join((base64.b64encode(x) if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return str(path)


def _one_line_error(res, words):
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr and words in res.stderr, res.stderr


def test_verify_refuses_what_holds_no_readings(run_cli, reading_device, tmp_path):
    (tmp_path / "bin.dat").write_bytes(bytes(range(256)) * 64)
    _one_line_error(run_cli("verify", "bin.dat"), "bin.dat is not a file of readings")
    (tmp_path / "empty.txt").write_text("\n\n")
    _one_line_error(run_cli("verify", "empty.txt"), "no readings in empty.txt: nothing verified")
    _one_line_error(run_cli("verify", "none.txt"), "no file of readings at none.txt")


def test_verify_gives_each_line_its_verdict(run_cli, reading_device, tmp_path):
    import base64

    first = "\ufeff" + base64.b64encode(reading_device.reading(E1, 1)).decode()  # saved by an editor with a BOM
    bad_header = reading_device.reading(E1, 2, protected=b"\xa1\x01")
    path = _readings_file(tmp_path / "r.txt", first, "!not base64!", bad_header, reading_device.reading(E1, 3))
    res = run_cli("verify", path)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith(f"line 1: seq 1 of epoch {E1} {reading_device.ICCID} temperature=21.50 Cel [verified]")
    assert lines[1].startswith("line 2: REJECTED: not base64")
    assert lines[2].startswith("line 3: REJECTED: malformed COSE header")
    assert lines[3].startswith("line 4: seq 3") and lines[3].endswith("[verified]")
    assert lines[4] == "2 of 4 readings verified"
    state = tmp_path / "state"
    registry = f"sqlite:///{(state / 'safebench.db').resolve()}"
    assert lines[5] == f"checked against the CA at {state / 'ca' / 'ca.pem'} and the registry {registry}"
    again = run_cli("verify", path, "--json")  # a file is checked on its own: the same verdicts again
    records = [json.loads(line) for line in again.stdout.splitlines()]
    assert again.returncode == 1 and len(records) == 5
    assert records[0]["line"] == 1 and records[0]["verified"] and records[0]["epoch"] == E1
    assert records[-1] == {"readings": 4, "failed": 2, "ca": str(state / "ca" / "ca.pem"),
                           "registry": registry}


def test_verify_shows_progress_on_stderr(run_cli, reading_device, tmp_path):
    path = _readings_file(tmp_path / "r.txt", *(reading_device.reading(E1, seq) for seq in range(1, 4)))
    res = run_cli("verify", path, "-v")  # stderr is no terminal here: -v asks for progress
    assert res.returncode == 0 and "3 of 3 readings verified" in res.stdout
    assert "verify: " in res.stderr and "MB, 1 readings, 0 rejected" in res.stderr


@pytest.mark.parametrize("count", ["0", "-5", "many"])
def test_read_count_must_be_a_positive_number(run_cli, count):
    res = run_cli("read", "--count", count)
    assert res.returncode == 2 and res.stdout == "" and res.stderr.count("\n") == 1, res.stderr
    assert "--count" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.timeout(180)
def test_read_streams_verdicts_and_fails_when_they_do(run_cli, start_cli, simulated_board, tmp_path):
    import signal

    state = tmp_path / "state"
    (state / "ca").mkdir(parents=True)
    (state / "ca" / "ca.pem").write_bytes(simulated_board["ca"].read_bytes())
    options = ("--port", simulated_board["port"], "--board-type", "unix_sim")
    unknown = run_cli("read", "--count", "2", "--json", *options)  # not provisioned: rejected, exit 1
    records = [json.loads(line) for line in unknown.stdout.splitlines()]
    assert unknown.returncode == 1, unknown.stderr
    assert [r.get("verified") for r in records] == [False, False, None] and records[-1]["failed"] == 2
    assert "run `safebench provision`" in records[0]["reason"]
    assert run_cli("provision", *options).returncode == 0
    follow = start_cli("read", "--follow", "--json", *options, state=state)
    streamed = [json.loads(follow.stdout.readline()) for _ in range(2)]  # each as it arrives
    follow.send_signal(signal.SIGINT)
    out, err = follow.communicate(timeout=60)
    assert follow.returncode == 0, err
    out = out.decode()
    assert all(r["verified"] for r in streamed) and streamed[1]["seq"] == streamed[0]["seq"] + 1
    summary = json.loads(out.splitlines()[-1])
    assert summary["failed"] == 0 and summary["readings"] >= 2


def test_provision_binds_the_sim_to_its_board_and_only_bind_moves_it(run_cli, simulated_board, tmp_path):
    from safebench.registry import Registry

    state = tmp_path / "state"
    (state / "ca").mkdir(parents=True)
    (state / "ca" / "ca.pem").write_bytes(simulated_board["ca"].read_bytes())
    first = run_cli("provision", "--json", *_on(simulated_board))
    assert first.returncode == 0, first.stderr
    registered = json.loads(first.stdout)
    with Registry.of_state(state) as registry:
        assert registry.devices[registered["kid"]]["board_id"] == registered["board_id"]
        registry.bind(registered["kid"], "0123456789ABCDEF")  # as if the SIM had been bound on another board
    _one_line(run_cli("provision", *_on(simulated_board)), 1, "belongs to board 0123456789ABCDEF", "a moved SIM",
              "safebench bind")
    bound = run_cli("bind", *_on(simulated_board))
    assert bound.returncode == 0 and f"bound to board {registered['board_id']}" in bound.stdout, bound.stderr
    assert "it was bound to board 0123456789ABCDEF" in bound.stdout
    assert "the board keeps the binding, signed by its SIM" in bound.stdout  # the board's own record too
    assert registered["board_binding"]["state"] == "bound"
    info = run_cli("info", *_on(simulated_board))
    assert f"binding: bound to SIM {registered['iccid']}" in info.stdout, info.stdout


# ---- bad input, errors in --json, --version, -v and progress, one command per board ----------------

def _one_line(res, status, *words):
    """A rejection: exit `status`, one line on stderr with all of `words`, no traceback."""
    assert res.returncode == status and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1 and all(w in res.stderr for w in words), res.stderr


def _on(board):
    return "--port", board["port"], "--board-type", "unix_sim"


def test_version(run_cli):
    from safebench import __version__

    res = run_cli("--version")
    assert res.returncode == 0 and res.stdout == f"safebench {__version__}\n"


def test_bad_hex_is_a_usage_error(run_cli):
    _one_line(run_cli("sign", "--hex", "ZZ"), 2, "argument --hex: 'ZZ' is not hex", "safebench sign --help")


def test_errors_in_json_mode_are_one_json_object(run_cli):
    for argv, status, kind in ((("sign", "--hex", "ZZ", "--json"), 2, "UsageError"),
                               (("--json", "info"), 1, "BenchError")):
        res = run_cli(*argv)
        assert res.returncode == status and res.stderr == "", res.stderr
        error = json.loads(res.stdout)
        assert set(error) == {"error", "type"} and error["type"] == kind


def test_a_ca_that_is_no_certificate(run_cli, simulated_board, tmp_path):
    (tmp_path / "notes.txt").write_text("not a certificate\n")
    _one_line(run_cli("sign", *_on(simulated_board), "--ca", "notes.txt"), 1,
              "notes.txt is not a PEM certificate", "give --ca FILE")
    _one_line(run_cli("sign", *_on(simulated_board), "--ca", str(tmp_path)), 1,
              f"cannot read the CA certificate {tmp_path}: Is a directory")
    bench_ca = tmp_path / "state" / "ca" / "ca.pem"  # the simulated bench's own CA, damaged
    bench_ca.parent.mkdir(parents=True)
    bench_ca.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    _one_line(run_cli("provision", *_on(simulated_board)), 1, f"{bench_ca} is not a PEM certificate",
              "safebench bench down")


def test_a_sim_roles_file_that_is_no_json(run_cli, simulated_board, tmp_path):
    (tmp_path / "roles.json").write_text("{signing_key: 02}")
    _one_line(run_cli("deploy", *_on(simulated_board), "--sim-roles", "roles.json"), 1,
              "the --sim-roles file roles.json is not JSON")


def test_a_damaged_registry(run_cli, simulated_board, tmp_path):
    registry = tmp_path / "state" / "registry.json"
    registry.parent.mkdir()
    for text in ('{"3f2a": {"iccid": ', "[1, 2]"):  # cut short; JSON but no registry
        registry.write_text(text)
        _one_line(run_cli("provision", *_on(simulated_board), "--ca", str(simulated_board["ca"])), 1,
                  f"the device registry {registry} is damaged", "safebench provision")


def test_a_rejected_certificate_names_the_ca_it_was_checked_against(run_cli, simulated_board, tmp_path):
    from safebench.pki import CertificateAuthority

    CertificateAuthority.create("another CA").save(tmp_path / "other")
    other = tmp_path / "other" / "ca.pem"
    for command in ("sign", "provision"):
        _one_line(run_cli(command, *_on(simulated_board), "--ca", str(other)), 1,
                  "certificate not trusted by the CA CN=another CA", f"checked against the CA at {other}",
                  "give --ca FILE")


def test_verbose_logs_the_serial_traffic(run_cli, simulated_board):
    res = run_cli("info", "-v", *_on(simulated_board))
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("\n") == 2 and "SIM ICCID" in res.stdout  # the log stays on stderr
    assert "binding: " in res.stdout.splitlines()[1]
    assert f'safebench.device: {simulated_board["port"]} < b\'{{"jsonrpc": "2.0", "id": 1, "method": "info"' in res.stderr
    assert f"safebench.device: {simulated_board['port']} > b'{{" in res.stderr


@pytest.mark.timeout(120)
def test_deploy_progress_goes_to_stderr_never_into_json(run_cli, simulated_board):
    res = run_cli("deploy", "-v", "--json", *_on(simulated_board))  # stderr is no terminal: -v asks for it
    assert res.returncode == 0, res.stderr
    files = json.loads(res.stdout)["files"]  # stdout is the one result, nothing else
    steps = [line for line in res.stderr.splitlines() if line.startswith("deploying file ")]
    assert [step.split(": ")[0] for step in steps] == [f"deploying file {n} of {len(files)}"
                                                       for n in range(1, len(files) + 1)]
    assert sorted(step.split(": ", 1)[1] for step in steps) == sorted(files)


def test_progress_is_one_line_redrawn_on_a_terminal():
    import argparse
    import io

    from safebench.cli.command import progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    out = Terminal()
    say = progress(argparse.Namespace(verbose=False), out)
    say("deploying file 1 of 2: main.py")
    say("deploying file 2 of 2: board.mpy")
    say.end()
    assert out.getvalue() == "\r\x1b[Kdeploying file 1 of 2: main.py\r\x1b[Kdeploying file 2 of 2: board.mpy\r\x1b[K"
    assert progress(argparse.Namespace(verbose=False), io.StringIO()) is None  # no terminal, no -v: silent


@pytest.mark.timeout(120)
def test_a_second_command_on_a_busy_board_is_refused(run_cli, simulated_board, tmp_path, safebench_executable):
    """While one command has the board, another is refused (not run across it, where its connect would
    reboot the board under the first); once the first is done, the board takes commands again."""
    import os
    import signal
    import subprocess
    import time

    from safebench.port_lock import lock_path

    lock = lock_path(simulated_board["port"])
    first = subprocess.Popen([safebench_executable, "info", *_on(simulated_board)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                             env=dict(os.environ, SAFEBENCH_STATE=str(tmp_path / "state")))
    try:
        deadline = time.monotonic() + 30
        while not (lock.exists() and lock.read_text().startswith(f"{first.pid}:")):
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.005)
        os.kill(first.pid, signal.SIGSTOP)  # keep it in the middle of its work, however fast it is
        try:
            second = run_cli("info", *_on(simulated_board))
        finally:
            os.kill(first.pid, signal.SIGCONT)
        out, err = first.communicate(timeout=60)
    finally:
        first.kill()
        first.wait()
    _one_line(second, 1, f"{simulated_board['port']} is in use by another safebench command (pid {first.pid}: "
                         "safebench info", "wait for it to finish")
    assert first.returncode == 0 and "SIM ICCID" in out, err
    assert run_cli("info", *_on(simulated_board)).returncode == 0  # the lock ended with the first command


def test_modem_reports_each_stage_of_the_bring_up(run_cli, simulated_board):
    res = run_cli("modem", *_on(simulated_board), "--attach", "--json")
    assert res.returncode == 0, res.stderr
    status = json.loads(res.stdout)
    assert status["stages"]["at"] == status["stages"]["sim"] == status["stages"]["registration"] == "ok"
    assert status["attached"] and status["registration"]["stat"] in (1, 5)
    said = run_cli("modem", *_on(simulated_board))
    assert said.returncode == 0 and said.stdout.splitlines()[:3] == [
        "at: ok", "sim: ok", "registration: ok (registered, home network: stat 1 by CEREG)"]
    _one_line(run_cli("modem", *_on(simulated_board), "--timeout", "0"), 2, "--timeout")


def test_deploy_writes_the_sims_network_settings(run_cli, simulated_board, tmp_path):
    (tmp_path / "bad.json").write_text('{"apn": 5}')
    _one_line(run_cli("deploy", *_on(simulated_board), "--network", "bad.json"), 1, "apn must be text")
    (tmp_path / "network.json").write_text('{"apn": "iot.example"}')
    try:
        assert run_cli("deploy", *_on(simulated_board), "--network", "network.json").returncode == 0
        assert run_cli("deploy", *_on(simulated_board)).returncode == 0  # a later deploy keeps them
        assert "APN: iot.example" in run_cli("modem", *_on(simulated_board)).stdout.splitlines()
    finally:
        (tmp_path / "network.json").write_text("{}")
        assert run_cli("deploy", *_on(simulated_board), "--network", "network.json").returncode == 0
