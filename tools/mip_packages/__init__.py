"""The firmware's mip packages: `firmware/package.json` (every feature) and `firmware/FEATURE/package.json`
(a feature with what its manifest requires), written from the feature manifests so they cannot drift from
what `safebench deploy` copies. `python -m mip_packages` rewrites them; `--check` only lists stale ones."""

import json
from pathlib import Path

from safebench.deploy import features, mip_package

REPO = Path(__file__).resolve().parents[2]  # tools/mip_packages/ is installed editable from the checkout
PACKAGE_JSON = "package.json"


def packages(root=REPO):
    """{path of each package.json: the text it should have}."""
    return {root / "firmware" / (feature or "") / PACKAGE_JSON: render(mip_package(feature))
            for feature in (None, *features())}


def render(package):
    """package.json text: one [destination, source] pair a line, as micropython-lib's read."""
    urls = ",\n".join(f"    {json.dumps(pair)}" for pair in package["urls"])
    return (f'{{\n  "urls": [\n{urls}\n  ],\n  "deps": {json.dumps(package["deps"])},\n'
            f'  "version": {json.dumps(package["version"])}\n}}\n')


def stale(root=REPO):
    """The package.json files that are missing or differ from the manifests."""
    return [path for path, text in packages(root).items()
            if not path.is_file() or path.read_text() != text]
