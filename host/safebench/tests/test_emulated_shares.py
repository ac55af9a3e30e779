"""The Makefile shares the HIL suite out over the emulated Picos' images (`make hil-emulated`): each test file of
hil_tests/ runs on every image (HIL_CORE) or on exactly one (HIL_SHARE_<release>), so none is left off the
emulated boards, and each image of EMU_IMAGES has a share."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _variables():
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    return {m[1]: m[2].split() for m in re.finditer(r"^([A-Z0-9_.]+) \??= (.*)$", text, re.MULTILINE)}


def test_every_hil_test_file_runs_on_an_emulated_pico():
    found = _variables()
    images = found["EMU_IMAGES"]
    shares = {image: found.get(f"HIL_SHARE_{image}") for image in images}
    assert all(shares.values()), f"an image of EMU_IMAGES without a HIL_SHARE_: {shares}"
    placed = found["HIL_CORE"] + [f for share in shares.values() for f in share]
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "hil_tests").glob("test_*.py"))
    assert sorted(placed) == files, (f"not on an emulated Pico: {sorted(set(files) - set(placed))}; "
                                     f"twice or unknown: {[f for f in placed if placed.count(f) > 1 or f not in files]}")
