"""The files an emulated Pico runs: official MicroPython UF2 images and the RP2040 B1 boot ROM.

The project never commits them. They are looked for in the folder `$SAFEBENCH_RP2040_IMAGES` names, else in
the cache folder (`$XDG_CACHE_HOME/safebench/rp2040`, default `~/.cache/safebench/rp2040`). Two ways fill
the cache:

    python -m safebench_simulator.rp2040.images seed DIR   # copies the known files of DIR, checked by SHA-256
    python -m safebench_simulator.rp2040.images fetch      # downloads them from their official sources

`fetch` needs internet access: the v1.22.0 release image from micropython.org, the boot ROM from the word
array in rp2040js's own repository (its demo/bootrom.ts, built from raspberrypi/pico-bootrom B1), both
checked against the hashes below; `fetch --release 1.28.0` takes any release's image from micropython.org's
download page (TLS authenticates the page; it publishes no hashes, so the one computed is printed).
"""

import argparse
import hashlib
import os
import re
import struct
import sys
import urllib.request
from pathlib import Path

IMAGES_ENV = "SAFEBENCH_RP2040_IMAGES"
BOOTROM = "rp2040-bootrom-b1.bin"
DEFAULT_RELEASE = "1.28.0"  # the image a new emulated Pico's flash gets
DOWNLOAD_PAGE = "https://micropython.org/download/RPI_PICO/"
FIRMWARE_URL = "https://micropython.org/resources/firmware/"
BOOTROM_URL = "https://raw.githubusercontent.com/wokwi/rp2040js/v1.3.3/demo/bootrom.ts"

# name -> SHA-256 of the files the project has checked (the v1.28.0 one is a build of the release tag,
# docs/hardware.md §1.5; the official download of v1.28.0 differs in its embedded build date)
KNOWN = {
    "RPI_PICO-20231227-v1.22.0.uf2": "2ef1b8fe16931dde698daa28579f34667910238a39d69eaf4d4c42e20b541519",
    "RPI_PICO-v1.28.0.uf2": "5da6ca3de906adff6b9126bd854883c7222faeb7ff2c935ddab73330dab9f323",
    BOOTROM: "90b31e108faedfa6bbcfcc33ba05dac61e645108cfbbdc385f8dafc71fde44ae",
}


class ImageError(Exception):
    """An image that is missing, damaged or cannot be fetched."""


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "safebench" / "rp2040"


def folder():
    """Where the images are looked for: $SAFEBENCH_RP2040_IMAGES, else the cache."""
    return Path(os.environ.get(IMAGES_ENV) or cache_dir())


def release_image(release=DEFAULT_RELEASE, where=None):
    """The UF2 of MicroPython `release` for the Pico in `where` (default folder()), or None. The names are
    micropython.org's (RPI_PICO-<date>-v<release>.uf2) or a build's without the date."""
    found = sorted(Path(where or folder()).glob(f"RPI_PICO*-v{release}.uf2"))
    return found[-1] if found else None


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def seed(source, dest=None):
    """Copy the known files of `source` into `dest` (default the cache) after checking their hashes;
    returns the names copied. A known name with another hash is refused."""
    dest = Path(dest or cache_dir())
    copied = []
    for name, digest in KNOWN.items():
        src = Path(source) / name
        if not src.is_file():
            continue
        found = sha256(src)
        if found != digest:
            raise ImageError(f"{src}: SHA-256 {found} is not the {name} the project checked ({digest})")
        if not (dest / name).is_file() or sha256(dest / name) != digest:
            _install(src.read_bytes(), dest / name)
            copied.append(name)
    if not copied and not any((Path(source) / n).is_file() for n in KNOWN):
        raise ImageError(f"no RP2040 images in {source} (looked for {', '.join(KNOWN)})")
    return copied


def _install(data, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # never a half-written image under the real name


def bootrom_from_words(text):
    """The boot ROM's bytes from rp2040js's demo/bootrom.ts (a Uint32Array of little-endian words)."""
    start = text.find("Uint32Array([")
    if start < 0:
        raise ImageError("the boot ROM source holds no Uint32Array([...])")
    words = [int(w, 16) for w in re.findall(r"0x([0-9a-fA-F]{1,8})", text[start:text.index("])", start)])]
    return struct.pack(f"<{len(words)}I", *words)


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.read()
    except OSError as e:
        raise ImageError(f"cannot fetch {url}: {getattr(e, 'reason', e)}") from None


def _checked(name, data):
    digest = hashlib.sha256(data).hexdigest()
    if name in KNOWN and digest != KNOWN[name]:
        raise ImageError(f"{name} from its source has SHA-256 {digest}, not {KNOWN[name]}: not installed")
    return digest


def fetch(release=None, dest=None, get=_get):
    """Download the boot ROM and the image of `release` (default: v1.22.0, whose hash is known) into `dest`
    (default the cache); returns {name: sha256}."""
    dest = Path(dest or cache_dir())
    rom = bootrom_from_words(get(BOOTROM_URL).decode())
    got = {BOOTROM: _checked(BOOTROM, rom)}
    _install(rom, dest / BOOTROM)
    if release is None:
        name = "RPI_PICO-20231227-v1.22.0.uf2"
    else:
        page = get(DOWNLOAD_PAGE).decode(errors="replace")
        names = sorted(set(re.findall(rf"RPI_PICO-\d{{8}}-v{re.escape(release)}\.uf2", page)))
        if not names:
            raise ImageError(f"no RPI_PICO image of v{release} on {DOWNLOAD_PAGE}")
        name = names[-1]
    data = get(FIRMWARE_URL + name)
    got[name] = _checked(name, data)
    _install(data, dest / name)
    return got


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m safebench_simulator.rp2040.images", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    s = sub.add_parser("seed", help="copy the known images of a folder into the cache, checked")
    s.add_argument("source")
    f = sub.add_parser("fetch", help="download the boot ROM and an image from their official sources")
    f.add_argument("--release", help="a MicroPython release, e.g. 1.28.0 (default: 1.22.0, hash checked)")
    for p in (s, f):
        p.add_argument("--dest", help=f"the folder to fill (default {cache_dir()})")
    args = parser.parse_args(argv)
    try:
        if args.what == "seed":
            copied = seed(args.source, args.dest)
            print(f"{args.dest or cache_dir()}: {', '.join(copied) or 'already holds them'}")
        else:
            for name, digest in fetch(args.release, args.dest).items():
                print(f"{name}  sha256 {digest}")
    except (ImageError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
