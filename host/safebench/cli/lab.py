"""`safebench lab export`: a labgrid exporter configuration for this lab host's boards (docs/lab.md)."""

from .command import Command, Group, simulated_bench

GROUPS = (Group("lab", "a lab of many machines on labgrid"),)


def _export_arguments(parser):
    parser.add_argument("--out", metavar="FILE", help="write it here (default: print it)")


def _export(args):
    """The exporter configuration publishing the simulated bench's boards, with the place tags each gets."""
    import yaml

    from .. import lab

    boards = [b for b in simulated_bench(args).status()["boards"] if b.get("alive")]
    config = lab.exporter_config(boards)
    text = yaml.safe_dump(config, sort_keys=False)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return {"exporter": config, "out": args.out, "text": text,
            "places": {b["name"]: {"match": f"*/{b['name']}/*", "tags": lab.tags(b)} for b in boards}}


def _say_exported(res):
    lines = [] if res["out"] else res["text"].splitlines()
    if res["out"]:
        lines.append(f"wrote {res['out']}: {len(res['exporter'])} board(s); run labgrid-exporter {res['out']}")
    for name, place in res["places"].items():
        tags = " ".join(f"{k}={v}" for k, v in place["tags"].items())
        lines.append(f"# place {name}: labgrid-client -p {name} create; add-match {place['match']}; set-tags {tags}")
    return lines


COMMANDS = (
    Command(("lab", "export"), "a labgrid exporter configuration for this host's boards", _export,
            _export_arguments, _say_exported),
)
