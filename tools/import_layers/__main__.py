"""`python -m import_layers [repo]`: print the layers, then every violation; exit status 1 if there is one."""

import sys
from pathlib import Path

from import_layers import FIRMWARE_LAYERS, HOST_LAYERS, check

REPO = Path(__file__).resolve().parents[2]  # tools/import_layers/ is installed editable from the checkout


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else REPO
    for title, layers in (("Host", HOST_LAYERS), ("Firmware", FIRMWARE_LAYERS)):
        print(f"{title} layers, lowest first (a module imports its own layer or a lower one; "
              "layers of one rank never import each other):")
        for layer in layers:
            print(f"  {layer.rank}  {layer.name:<20} {', '.join(layer.members)}")
    violations = check(root)
    print(f"\n{len(violations)} violation(s)" + (":" if violations else "."))
    for violation in violations:
        print(f"  {violation}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
