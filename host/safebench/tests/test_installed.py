"""An installed safebench (not editable, no checkout in sight) carries everything `demo` needs."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_demo_from_a_plain_install(tmp_path, no_leftovers):
    source, site = tmp_path / "source", tmp_path / "site"
    source.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", ".*")
    for part in ("pyproject.toml", "README.md", "host", "firmware", "boards"):  # pip builds in the tree it gets
        copy = shutil.copytree if (REPO / part).is_dir() else shutil.copy
        copy(REPO / part, source / part, **({"symlinks": True, "ignore": skip} if copy is shutil.copytree else {}))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(source)], check=True, timeout=300,
                   capture_output=True)
    assert not (site / "safebench" / "firmware").is_symlink()  # real files, copied in
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # PYTHONPATH puts the installed copy before the checkout's editable one; -m runs the installed CLI.
    env = dict(os.environ, PYTHONPATH=str(site), SAFEBENCH_STATE=str(elsewhere / "state"))
    where = subprocess.run([sys.executable, "-c", "import safebench, safebench_simulator; "
                            "print(safebench.__file__); print(safebench_simulator.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert all(line.startswith(str(site)) for line in where.stdout.split()), where.stdout
    res = subprocess.run([sys.executable, "-m", "safebench", "demo"], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "signature verified" in res.stdout and "Bench down." in res.stdout
