"""`safebench dashboard`: the live demonstrator page (docs/dashboard.md)."""

import argparse
import time
from pathlib import Path

from ..database import DEFAULT_NAME
from ..errors import UsageError
from .command import Command


def _in(low, high, kind=int):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r}: give {low}..{high}")
        return value
    return parse


def _dashboard_arguments(parser):
    parser.add_argument("--port", type=_in(0, 65535), default=8080, help="port on 127.0.0.1 (default 8080; 0: a free one)")
    parser.add_argument("--db", metavar="URL", help="the ingest's database (default: the state's safebench.db)")
    parser.add_argument("--demo", action="store_true",
                        help="bring up a whole demonstrator behind the page: simulated boards publishing through "
                             "Mosquitto into an ingest, and the page's tamper, replay and fault buttons")
    parser.add_argument("--boards", type=_in(1, 8), default=3, help="with --demo: how many boards (1-8, default 3)")
    parser.add_argument("--interval", type=_in(0.1, 3600, float), default=2.0,
                        help="with --demo: seconds between a board's readings (default 2)")


def _dashboard(args):
    """Serve the page until Ctrl-C: from the database (`safebench ingest` writes it), or with --demo from a
    demonstrator brought up here and taken down on the way out."""
    from ..dashboard import Dashboard
    from ..dashboard.demonstrator import Demonstrator

    if args.demo:
        if args.db:
            raise UsageError("--demo keeps its own database: leave out --db")
        with Demonstrator(args.state, args.boards, args.interval, args.port, log=lambda line: _say(line, args)) as demo:
            return _serve(args, demo.dashboard)
    with Dashboard(args.db or Path(args.state) / DEFAULT_NAME, args.port) as page:
        return _serve(args, page)


def _serve(args, page):
    _say(f"the page: {page.url} (from {page.database}); Ctrl-C stops it", args,
         {"event": "serving", "url": page.url, "database": page.database})
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    return {"url": page.url, "database": page.database}


def _say(line, args, record=None):
    """A line for the presenter; with --json the records are the output, and the progress goes to stderr."""
    import json
    import sys

    if args.json:
        print(json.dumps(record) if record else line, file=sys.stdout if record else sys.stderr, flush=True)
    else:
        print(line, flush=True)


COMMANDS = (
    Command(("dashboard",), "serve the live demonstrator page of signed readings (with --demo, the boards too)",
            _dashboard, _dashboard_arguments, lambda res: [f"page {res['url']} stopped"], streams=True),
)
