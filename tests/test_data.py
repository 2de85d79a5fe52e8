import shutil

import pytest
import torch

from gaacnn import data


def test_registry_counts():
    assert len(data.dataset_files("kodak")) == 24
    assert len(data.dataset_files("cid22-train")) == 209
    assert len(data.dataset_files("cid22-valid")) == 41
    assert len(data.dataset_files("clic2025")) == 10
    assert len(data.dataset_files("tecnick")) == 1


@pytest.mark.skipif(data.mirror_root() is None, reason="no data mirror on this machine")
def test_kodak_verifies_from_the_mirror():
    paths = data.dataset_paths("kodak", download=False)
    assert len(paths) == 24 and all(p.is_file() for p in paths)


def _fake_mirror(tmp_path, monkeypatch, rel):
    src = data.mirror_root() / rel
    (tmp_path / rel).parent.mkdir(parents=True)
    shutil.copy(src, tmp_path / rel)
    monkeypatch.setenv("GAACNN_DATA", str(tmp_path))
    monkeypatch.setattr(data, "CACHE", tmp_path / "cache")
    return tmp_path / rel


@pytest.mark.skipif(data.mirror_root() is None, reason="no data mirror on this machine")
def test_corrupted_file_is_named(tmp_path, monkeypatch):
    rel = "kodak/kodim01.png"
    path = _fake_mirror(tmp_path, monkeypatch, rel)
    blob = bytearray(path.read_bytes())
    blob[1000] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(data.DataError, match="kodim01.png: checksum mismatch"):
        data.locate(rel, download=False)


@pytest.mark.skipif(data.mirror_root() is None, reason="no data mirror on this machine")
def test_missing_file_says_what_to_do(tmp_path, monkeypatch):
    _fake_mirror(tmp_path, monkeypatch, "kodak/kodim01.png")
    with pytest.raises(data.DataError, match="clic2025/.*not found.*clic2025.compression.cc"):
        data.locate(data.dataset_files("clic2025")[0], download=False)


@pytest.mark.skipif(data.mirror_root() is None, reason="no data mirror on this machine")
def test_random_crops_are_reproducible_and_rgb():
    paths = data.dataset_paths("cid22-train")
    gray = [p for p in paths if p.name in ("2387532.png", "962312.png")]
    ds = data.RandomCrops(gray + paths[:3], patch=64, seed=7)
    again = data.RandomCrops(gray + paths[:3], patch=64, seed=7)
    assert torch.equal(ds[5], again[5])
    assert not torch.equal(ds[5], ds[6])
    assert ds[0].shape == (3, 64, 64) and 0 <= ds[0].min() and ds[0].max() <= 1
    other = data.RandomCrops(gray + paths[:3], patch=64, seed=8)
    assert not torch.equal(ds[5], other[5])


def test_set_size_counts_the_published_set():
    from gaacnn.data import dataset_files, set_size

    assert set_size("tecnick") == 100 > len(dataset_files("tecnick"))
    assert set_size("kodak") == len(dataset_files("kodak")) == 24


@pytest.mark.skipif(data.mirror_root() is None, reason="no data mirror on this machine")
def test_a_pack_carries_the_pixels_and_refuses_a_changed_one(tmp_path, monkeypatch):
    """A pack (what travels to a GPU machine) decodes to the verified images' pixels, is what
    dataset_paths reads once GAACNN_PACK names it, and refuses an image whose pixels changed."""
    import json

    import numpy as np
    from PIL import Image

    folder = data.pack("kodak", tmp_path, method=0, keep=2, progress=False)
    sources = [e["source"] for e in json.loads((folder / data.PACK_INDEX).read_text())["images"]]
    monkeypatch.setenv(data.PACK_ENV, str(tmp_path))
    paths = data.dataset_paths("kodak")
    assert [p.suffix for p in paths] == [".webp", ".webp"]
    for path, source in zip(paths, sources):
        assert np.array_equal(data.load_rgb(path), data.load_rgb(data.locate(f"kodak/{source}")))
    assert data.dataset_paths("tecnick")[0].suffix == ".png"  # a set the pack lacks comes from the mirror
    rgb = data.load_rgb(paths[0])
    rgb[0, 0, 0] ^= 1
    Image.fromarray(rgb).save(paths[0], "WEBP", lossless=True)
    with pytest.raises(data.DataError, match="pixels differ"):
        data.dataset_paths("kodak")
