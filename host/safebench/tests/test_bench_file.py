"""The bench file: parsing, the errors it gives for mistakes, and aliases resolved to ports by USB serial."""

import functools
import textwrap

import pytest

from safebench import bench_file
from safebench.errors import BenchFileError
from safebench.usb_boards import UsbPort

GOOD = """\
boards:
  esp-bg96:
    serial: "0001A2B3"
    type: esp32_devkitc_bg96
    modem: quectel
    sim: {iccid: "8944500601200000001", ca: certs/ca.pem}
    notes: shelf 2
  pico:
    serial: "E66038B7138A2F2D"
    type: picow_bg95
  modem-adapter:
    serial: "FT5XQ1"
    interface: 1
    type: unix_sim
  sim0:
    port: sim0/tty
    type: unix_sim
"""

BUS = [UsbPort("/dev/ttyUSB0", 0x10C4, 0xEA60, "0001A2B3", location="1-1.1:1.0"),
       UsbPort("/dev/ttyACM0", 0x2E8A, 0x0005, "E66038B7138A2F2D", location="1-1.2:1.0"),
       UsbPort("/dev/ttyUSB1", 0x0403, 0x6010, "FT5XQ1", location="1-1.3:1.0"),
       UsbPort("/dev/ttyUSB2", 0x0403, 0x6010, "FT5XQ1", location="1-1.3:1.1")]


@pytest.fixture
def bench_yaml(tmp_path):
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    path = tmp_path / "bench.yaml"
    path.write_text(GOOD)
    return path


def test_parse(bench_yaml, tmp_path):
    entries = bench_file.load(bench_yaml)
    assert list(entries) == ["esp-bg96", "pico", "modem-adapter", "sim0"]
    esp = entries["esp-bg96"]
    assert (esp.serial, esp.type, esp.modem, esp.iccid, esp.notes) == (
        "0001A2B3", "esp32_devkitc_bg96", "quectel", "8944500601200000001", "shelf 2")
    assert esp.ca == str(tmp_path / "certs" / "ca.pem")  # relative to the bench file, not the cwd
    assert entries["sim0"].port == str(tmp_path / "sim0" / "tty")
    assert entries["modem-adapter"].interface == 1


def test_default_path_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv(bench_file.ENV, raising=False)
    assert str(bench_file.bench_path()) == "bench.yaml"
    monkeypatch.setenv(bench_file.ENV, str(tmp_path / "lab.yaml"))
    assert bench_file.bench_path() == tmp_path / "lab.yaml"
    assert bench_file.bench_path("x.yaml").name == "x.yaml"
    with pytest.raises(BenchFileError, match=r"no bench file at .*lab.yaml: draft one with `safebench boards"):
        bench_file.load()


BAD = [
    ("boards: [a, b]\n", "expected a mapping `boards:`"),
    ("board:\n  x: {serial: '1', type: unix_sim}\n", "expected a mapping `boards:`"),
    ("boards:\n  x: {serial: '1', type: unix_sim}\nextra: 1\n", "unknown top-level key"),
    ("boards:\n  x: {serial: 00012345, type: unix_sim}\n", "serial must be a quoted string"),
    ("boards:\n  x: {serial: '1', port: /dev/ttyUSB0, type: unix_sim}\n", "exactly one of serial:"),
    ("boards:\n  x: {type: unix_sim}\n", "exactly one of serial:"),
    ("boards:\n  x: {serail: '1', type: unix_sim}\n", "unknown key 'serail'"),
    ("boards:\n  x: {serial: '1', type: esp32}\n", "type must be one of esp32_devkitc_bg96, "),
    ("boards:\n  x: {serial: '1'}\n", "type must be one of"),
    ("boards:\n  x: {serial: '1', type: unix_sim, modem: nokia}\n", "modem must be one of generic, quectel, simcom"),
    ("boards:\n  x: {serial: '1', type: unix_sim, sim: {iccid: 8944}}\n", "sim.iccid must be a quoted string"),
    ("boards:\n  x: {serial: '1', type: unix_sim, sim: {ca: none.pem}}\n", "sim.ca: no CA certificate at"),
    ("boards:\n  x: {serial: '1', type: unix_sim, sim: {pin: '1234'}}\n", "sim is a mapping with iccid:"),
    ("boards:\n  x: {port: /dev/x, interface: 1, type: unix_sim}\n", "interface is a USB interface number"),
    ("boards:\n  x: {serial: '1', type: unix_sim}\n  x: {serial: '2', type: unix_sim}\n", "duplicate key 'x'"),
    ("boards:\n  x: {serial: '1', type: unix_sim}\n  y: {serial: '1', type: unix_sim}\n",
     "boards 'x' and 'y' name the same serial 1"),
    ("boards:\n  'my board': {serial: '1', type: unix_sim}\n", "an alias is letters, digits"),
    ("boards:\n  x: {serial: '1', type: unix_sim\n", "not valid YAML (line 3, column 1)"),
    ("", "expected a mapping `boards:`"),
]


@pytest.mark.parametrize("text, message", BAD)
def test_validation(text, message, tmp_path):
    with pytest.raises(BenchFileError) as err:
        bench_file.parse(text, tmp_path, "bench.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("bench.yaml") and "\n" not in str(err.value)


def test_alias_to_port(bench_yaml):
    lister = lambda: BUS  # noqa: E731
    assert bench_file.lookup("esp-bg96", bench_yaml, lister)[1] == "/dev/ttyUSB0"
    assert bench_file.lookup("pico", bench_yaml, lister)[1] == "/dev/ttyACM0"
    assert bench_file.lookup("modem-adapter", bench_yaml, lister)[1] == "/dev/ttyUSB2"  # interface 1
    # The same boards enumerated in another order: the aliases follow the serial numbers, not the nodes.
    shuffled = [UsbPort("/dev/ttyACM3", 0x2E8A, 0x0005, "E66038B7138A2F2D"), UsbPort("/dev/ttyUSB7", 0x10C4, 0xEA60,
                                                                                    "0001A2B3")]
    assert bench_file.lookup("esp-bg96", bench_yaml, lambda: shuffled)[1] == "/dev/ttyUSB7"
    assert bench_file.lookup("pico", bench_yaml, lambda: shuffled)[1] == "/dev/ttyACM3"


def test_alias_errors(bench_yaml):
    with pytest.raises(BenchFileError, match=r"no board 'esp' in .*bench.yaml \(it has: esp-bg96, modem-adapter, "):
        bench_file.lookup("esp", bench_yaml, lambda: BUS)
    with pytest.raises(BenchFileError, match=r"board 'pico' \(USB serial E66038B7138A2F2D\) is not connected"):
        bench_file.lookup("pico", bench_yaml, lambda: BUS[:1])
    with pytest.raises(BenchFileError, match="board 'sim0' is not connected: no port at"):
        bench_file.lookup("sim0", bench_yaml, lambda: BUS)
    entry = bench_file.BoardEntry("dual", "unix_sim", serial="FT5XQ1")
    with pytest.raises(BenchFileError, match=r"matches 2 ports: /dev/ttyUSB1 \(location 1-1.3:1.0\), /dev/ttyUSB2 "
                                             r".*add interface: N"):
        bench_file.find_port(entry, lambda: BUS)


# ---- --board on the CLI, against the simulated board named by port: --------------------------------

@pytest.mark.timeout(180)
def test_cli_board_alias(simulated_board, tmp_path, run_cli):
    other = tmp_path / "elsewhere"  # a state folder with no bench: only the alias can lead to the board
    cli = functools.partial(run_cli, state=other)
    (tmp_path / "lab.yaml").write_text(textwrap.dedent(f"""\
        boards:
          bench-sim:
            port: {simulated_board['port']}
            type: unix_sim
            sim: {{ca: {simulated_board['ca']}}}
        """))
    res = cli("deploy", "--board", "bench-sim", "--bench", "lab.yaml")
    assert res.returncode == 0, res.stderr
    res = cli("info", "--board", "bench-sim", env={bench_file.ENV: "lab.yaml"})
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"unix-sim on {simulated_board['port']}: firmware ")
    res = cli("sign", "--board", "bench-sim", "--bench", "lab.yaml")
    assert res.returncode == 0, res.stderr  # the CA came from the alias's sim.ca
    assert "signature verified" in res.stdout

    for args, message in [
        (("--board", "nope"), "safebench: no board 'nope' in lab.yaml (it has: bench-sim)\n"),
        (("--board", "bench-sim", "--port", "/dev/ttyUSB0"), "safebench: give --board ALIAS or --port PORT, not both\n"),
        (("--board", "bench-sim", "--board-type", "picow_bg95"),
         "safebench: --board-type picow_bg95 contradicts the bench file: bench-sim is a unix_sim\n"),
    ]:
        res = cli("info", *args, "--bench", "lab.yaml")
        assert (res.returncode, res.stderr) == (1, message)


def test_draft_from_connected_boards(tmp_path):
    from safebench import usb_boards as boards

    bus = [UsbPort("/dev/ttyACM0", 0x2E8A, 0x0005, "E66038B7138A2F2D"), UsbPort("/dev/ttyUSB0", 0x10C4, 0xEA60, "0001"),
           UsbPort("/dev/ttyUSB1", 0x2C7C, 0x0700, "QC1"), UsbPort("/dev/ttyUSB2", 0x1A86, 0x7523, None)]
    found = boards.connected(lambda: bus)
    found[0]["board_type"] = "picow_bg95"  # as --probe fills it in from the firmware's `info`
    res = bench_file.draft(found, tmp_path / "bench.yaml")
    assert res == {"bench_file": str(tmp_path / "bench.yaml"), "drafted": 2}  # no modem, no board without serial
    text = (tmp_path / "bench.yaml").read_text()
    assert 'serial: "E66038B7138A2F2D"\n    type: "picow_bg95"' in text
    assert 'serial: "0001"\n    type: ""  # one of: esp32_devkitc_bg96, esp32_devkitc_sim7080g, lilygo_t_sim7080g_s3' in text
    with pytest.raises(BenchFileError, match="board 'esp32-1': type must be one of .* \\(got ''\\)"):
        bench_file.load(tmp_path / "bench.yaml")  # a guess is never written: someone who knows the wiring fills it in
    with pytest.raises(BenchFileError, match="exists: not overwriting it"):
        bench_file.draft(found, tmp_path / "bench.yaml")
    with pytest.raises(BenchFileError, match="no boards to write"):
        bench_file.draft(found[2:], tmp_path / "other.yaml")
