"""Commands of the simulated bench and the simulator: bench up|down|status, card new, simulate modem."""

import argparse
from pathlib import Path

from safebench_simulator import modem_options
from safebench_simulator import profile as card_profiles
from safebench_simulator.dialects import DIALECTS

from ..errors import UnreadableFileError, UsageError
from .command import Command, Group, simulated_bench

MAX_BOARDS = 8  # on one host: each board is a MicroPython VM and a simulated modem

GROUPS = (
    Group("bench", "the simulated bench"),
    Group("card", "simulated SIM card images"),
    # "sim" is the SIM everywhere else; the old spelling still runs the simulator.
    Group("simulate", "simulated hardware on its own", aliases=("sim",)),
)


# ---- bench up | down | status --------------------------------------------------------------------

def _bench_up_arguments(parser):
    parser.add_argument("--heap", help="heap of the unix-port board, as a 32-bit board's, e.g. 64K (default 256K; "
                                       "not with --emulate: a Pico has the heap its image gives it)")
    parser.add_argument("--modem", help="wire the board to this modem serial port instead of a simulated modem")
    parser.add_argument("--card", help="SIM card image for the simulated modem, made by `card new` (default: a new one)")
    parser.add_argument("--dialect", choices=list(DIALECTS),
                        help="module the simulated modem behaves as (default: the board's; generic for the unix port)")
    parser.add_argument("--board-type", help="with --emulate: the board to emulate (pico_waveshare_sim7080g)")
    parser.add_argument("--emulate", action="store_true",
                        help="an emulated Pico (rp2040js) running an official MicroPython image, of --board-type")
    parser.add_argument("--firmware", help="with --emulate: the MicroPython image for a new flash, a UF2 or a release "
                                           "of the images folder such as 1.22.0 (default 1.28.0; docs/hardware.md §1.5)")
    parser.add_argument("--boards", type=_board_count, default=1,
                        help="how many boards, each with its own simulated modem and SIM (1-8, default 1)")


def _board_count(text):
    if not text.isdigit() or not 1 <= int(text) <= MAX_BOARDS:
        raise argparse.ArgumentTypeError(f"{text!r}: give 1..{MAX_BOARDS}")
    return int(text)


def _bench_up(args):
    if args.emulate != bool(args.board_type):
        raise UsageError("--emulate needs --board-type (pico_waveshare_sim7080g), and --board-type needs --emulate")
    if args.firmware and not args.emulate:
        raise UsageError("--firmware is for an emulated board: add --emulate --board-type pico_waveshare_sim7080g")
    if args.boards > 1 and (args.modem or args.card):
        raise UsageError("--boards gives each board its own simulated modem and SIM: leave out --modem and --card")
    state = simulated_bench(args).up(heap=args.heap, modem=args.modem, card=args.card, dialect=args.dialect,
                                     progress=args.progress, board_type=args.board_type, firmware=args.firmware,
                                     boards=args.boards)
    return {"up": True, "boards": state["boards"]}


def _say_boards(res):
    if not res.get("boards"):
        return ["no simulated bench is up"]
    lines = []
    for b in res["boards"]:
        state = "running" if b.get("alive", True) else "NOT running"
        kind = f"emulated {b['type']} ({Path(b['firmware']).name})" if b.get("emulated") else f"heap {b['heap']}"
        control = f", fault control {b['modem_control']}" if b.get("modem_control") else ""
        lines.append(f"{b['name']}: {state}, serial port {b['port']} ({b['device']}), {kind}, modem {b['modem']}{control}")
    return lines


def _bench_down(args):
    bench = simulated_bench(args)
    try:
        bench.recorded()
        damaged = {}
    except UnreadableFileError as e:  # down stops the bench all the same: it finds the processes without it
        damaged = {"damaged": f"{e}; found the processes by their command lines"}
    return {"stopped": bench.down(), **damaged}


def _say_stopped(res):
    damaged = f" ({res['damaged']})" if res.get("damaged") else ""
    return [f"stopped: {', '.join(res['stopped']) or 'nothing was running'}{damaged}"]


def _bench_status(args):
    return simulated_bench(args).status()


# ---- card new ------------------------------------------------------------------------------------

def _card_new_arguments(parser):
    parser.add_argument("--profile", default=card_profiles.DEFAULT,
                        help=f"card profile: {', '.join(card_profiles.names())} or a file")
    parser.add_argument("--out", required=True, help="where to write the card image (JSON; never overwritten)")
    parser.add_argument("--ca-cert", help="CA certificate (PEM) to issue with (default: the bench CA)")
    parser.add_argument("--ca-key", help="that CA's private key (PEM)")
    parser.add_argument("--factory", action="store_true",
                        help="as the SIM ships before enrolment: a bootstrap key and its certificate from the CA "
                             "(the manufacturer's), the operational key and certificate empty")


def _card_new(args):
    """A personalised simulated card image: fresh keys, a client certificate from the CA."""
    from ..provision import card_new

    try:
        return card_new(args.out, args.state, args.profile, args.ca_cert, args.ca_key, factory=args.factory)
    except ValueError as e:  # unknown profile, unreadable CA, existing --out
        raise UsageError(str(e)) from e


def _say_card(res):
    roles = res["roles"]
    lines = [f"card image {res['card']}: {res['profile']} profile, ICCID {res['iccid']}",
             f"{'bootstrap' if res['factory'] else 'signing'} key {roles['signing_key']}, certificate in file "
             f"{roles['client_cert']}: {res['subject']} (issued by {res['issuer']})"]
    if res["factory"]:
        lines.append(f"operational key {roles['enrolment_key']} empty: the SIM generates it at enrolment")
    return lines


# ---- simulate modem ------------------------------------------------------------------------------

def _simulate_modem(args):
    """The simulated modem and SIM alone, in the foreground, until Ctrl-C: the simulator's own main loop
    in this process (it stops cleanly on SIGINT and SIGTERM). Exits with the modem's status."""
    if not Path(args.card).is_file():
        raise UsageError(f"no card image at {args.card}: make one with `safebench card new --out {args.card}`")
    from safebench_simulator import modem

    raise SystemExit(modem.run(args, say="json" if args.json else "port"))


COMMANDS = (
    Command(("bench", "up"), "start a simulated board, modem and SIM", _bench_up, _bench_up_arguments, _say_boards),
    Command(("bench", "down"), "stop the simulated bench", _bench_down, say=_say_stopped),
    Command(("bench", "status"), "show what the bench runs", _bench_status, say=_say_boards),
    Command(("card", "new"), "a new card image: fresh keys, a CA-issued certificate", _card_new, _card_new_arguments,
            _say_card),
    Command(("simulate", "modem"), "run a simulated modem and SIM on a pty or port", _simulate_modem,
            modem_options.add_arguments),
)
