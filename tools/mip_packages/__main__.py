"""`python -m mip_packages [--check]`: rewrite the firmware's package.json files from the manifests; with
--check, list the stale ones and exit 1 if there are any."""

import sys

from mip_packages import REPO, packages, stale


def main(argv):
    outdated = stale()
    if "--check" in argv:
        for path in outdated:
            print(f"stale: {path.relative_to(REPO)} (run `python -m mip_packages`)")
        return 1 if outdated else 0
    for path, text in packages().items():
        if path in outdated:
            path.write_text(text)
            print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
