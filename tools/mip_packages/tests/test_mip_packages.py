"""The firmware's package.json files are what the manifests say (`python -m mip_packages` rewrites them)."""

import json

from mip_packages import REPO, packages, render, stale

from safebench.deploy import feature_modules, features


def test_committed_package_json_files_match_the_manifests():
    assert stale() == [], "stale package.json: run `python -m mip_packages` after changing a manifest"


def test_each_package_installs_what_deploy_copies(tmp_path):
    """The same modules as `deploy --features FEATURE` (every feature for firmware/package.json), each URL a
    file beside the package or in a feature it requires."""
    for path, text in packages().items():
        package = json.loads(text)
        feature = path.parent.name if path.parent.name in features() else None
        assert [dest for dest, _ in package["urls"]] == list(feature_modules([feature] if feature else None))
        assert all((path.parent / src).resolve().is_file() for _, src in package["urls"])
        assert package["version"] and package["deps"] == []
    assert {p.relative_to(REPO).as_posix() for p in packages()} == {
        "firmware/package.json", *(f"firmware/{f}/package.json" for f in features())}
    assert len(stale(tmp_path)) == len(features()) + 1  # a tree without them has every one stale


def test_render_is_json_with_one_url_a_line():
    package = {"urls": [["a.py", "a.py"], ["b.py", "../core/b.py"]], "deps": [], "version": "1.0"}
    text = render(package)
    assert json.loads(text) == package and '\n    ["b.py", "../core/b.py"]\n' in text
