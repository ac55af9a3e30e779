"""The emulated Pico's images: seeding the cache from a folder, fetching from the official sources (their
answers given here, as the tests have no internet), and refusing files whose hash is not the checked one."""

import hashlib
import struct

import pytest

from safebench_simulator.rp2040 import images

ROM_WORDS = [0x20041F00, 0x000000EF, 0x00000035]
ROM = struct.pack("<3I", *ROM_WORDS)
ROM_TS = "// built from pico-bootrom\nexport const bootromB1 = new Uint32Array([\n  0x20041f00, 0x000000ef,\n  0x35,\n]);\n"


@pytest.fixture
def known(monkeypatch):
    """KNOWN hashes for small stand-in files (the real ones are 16 KB to 700 KB)."""
    files = {"RPI_PICO-20231227-v1.22.0.uf2": b"v1.22 image", images.BOOTROM: ROM}
    monkeypatch.setattr(images, "KNOWN", {n: hashlib.sha256(d).hexdigest() for n, d in files.items()})
    return files


def test_boot_rom_from_rp2040js_words():
    assert images.bootrom_from_words(ROM_TS) == ROM
    with pytest.raises(images.ImageError, match="no Uint32Array"):
        images.bootrom_from_words("export const x = 1;")


def test_seed_copies_checked_files_once(tmp_path, known):
    src, dest = tmp_path / "shared", tmp_path / "cache"
    src.mkdir()
    for name, data in known.items():
        (src / name).write_bytes(data)
    (src / "README.md").write_text("not an image")
    assert sorted(images.seed(src, dest)) == sorted(known)
    assert images.seed(src, dest) == []  # already there
    assert sorted(p.name for p in dest.iterdir()) == sorted(known)


def test_seed_refuses_a_damaged_image_and_installs_nothing(tmp_path, known):
    src, dest = tmp_path / "shared", tmp_path / "cache"
    src.mkdir()
    (src / images.BOOTROM).write_bytes(ROM[:-1] + b"\xff")
    with pytest.raises(images.ImageError, match="is not the rp2040-bootrom-b1.bin the project checked"):
        images.seed(src, dest)
    assert not dest.exists()
    with pytest.raises(images.ImageError, match="no RP2040 images in"):
        images.seed(tmp_path / "empty", dest)


def _server(pages):
    asked = []

    def get(url):
        asked.append(url)
        return pages[url]

    return get, asked


def test_fetch_checks_the_known_files(tmp_path, known):
    get, asked = _server({images.BOOTROM_URL: ROM_TS.encode(),
                          images.FIRMWARE_URL + "RPI_PICO-20231227-v1.22.0.uf2": b"v1.22 image"})
    got = images.fetch(dest=tmp_path, get=get)
    assert got == {n: hashlib.sha256(d).hexdigest() for n, d in known.items()}
    assert (tmp_path / images.BOOTROM).read_bytes() == ROM and len(asked) == 2
    bad, _ = _server({images.BOOTROM_URL: ROM_TS.encode(),
                      images.FIRMWARE_URL + "RPI_PICO-20231227-v1.22.0.uf2": b"something else"})
    with pytest.raises(images.ImageError, match="not installed"):
        images.fetch(dest=tmp_path / "other", get=bad)
    assert not (tmp_path / "other" / "RPI_PICO-20231227-v1.22.0.uf2").exists()


def test_fetch_a_release_from_the_download_page(tmp_path, known):
    page = b'<a href="/resources/firmware/RPI_PICO-20260401-v1.28.0.uf2">v1.28.0 (2026-04-01) .uf2</a>'
    get, _ = _server({images.BOOTROM_URL: ROM_TS.encode(), images.DOWNLOAD_PAGE: page,
                      images.FIRMWARE_URL + "RPI_PICO-20260401-v1.28.0.uf2": b"v1.28 image"})
    got = images.fetch("1.28.0", dest=tmp_path, get=get)
    assert got["RPI_PICO-20260401-v1.28.0.uf2"] == hashlib.sha256(b"v1.28 image").hexdigest()
    assert images.release_image("1.28.0", tmp_path).name == "RPI_PICO-20260401-v1.28.0.uf2"
    with pytest.raises(images.ImageError, match="no RPI_PICO image of v1.99.0"):
        images.fetch("1.99.0", dest=tmp_path, get=get)


def test_folder_is_the_environment_or_the_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(images.IMAGES_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert images.folder() == tmp_path / "safebench" / "rp2040"
    monkeypatch.setenv(images.IMAGES_ENV, str(tmp_path / "mine"))
    assert images.folder() == tmp_path / "mine"
