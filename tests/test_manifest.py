"""Shipped weights: every manifest entry exists, matches its checksum and fingerprint, and codes."""

import pytest
import torch

from gaacnn import manifest
from gaacnn.codec import decode, encode, read_header
from gaacnn.weights import WeightsError, weights_fingerprint

ENTRIES = manifest.entries()
FIELDS = {"name", "file", "sha256", "fingerprint", "family", "model", "metric", "lambda", "steps", "patch",
          "batch", "train_set", "seed", "wall_seconds", "commit", "precision"}


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_entry_loads_and_codes(entry):
    assert FIELDS <= set(entry), FIELDS - set(entry)
    model = manifest.load(entry["name"])
    assert weights_fingerprint(model).hex() == entry["fingerprint"]
    config = model.meta["config"]  # the last run's settings, saved into the weights file
    assert (entry["seed"], entry["lambda"], entry["batch"], entry["patch"]) == (
        config["seed"], config["lmbda"], config["batch"], config["patch"])
    x = torch.rand(1, 3, 64, 96)
    data = encode(model, x)
    assert read_header(data).fingerprint.hex() == entry["fingerprint"]
    assert decode(model, data).shape == x.shape


def test_shipped_weights_stay_small():
    total = sum((manifest.WEIGHTS_DIR / e["file"]).stat().st_size for e in ENTRIES)
    assert total < 100e6


def test_checksum_mismatch_is_refused(tmp_path, monkeypatch):
    if not ENTRIES:
        pytest.skip("no shipped weights")
    entry = dict(ENTRIES[0], sha256="0" * 64)
    monkeypatch.setattr(manifest, "find", lambda name: entry)
    with pytest.raises(WeightsError, match="SHA-256"):
        manifest.load(entry["name"])


def test_unknown_name():
    with pytest.raises(WeightsError, match="no weights named"):
        manifest.load("no-such-weights")


def test_cli_finds_shipped_weights_by_fingerprint(tmp_path):
    if not ENTRIES:
        pytest.skip("no shipped weights")
    import subprocess
    import sys

    from PIL import Image

    Image.new("RGB", (30, 20), (120, 60, 30)).save(tmp_path / "a.png")
    name = ENTRIES[0]["name"]
    run = [sys.executable, "-m", "gaacnn"]
    r = subprocess.run(run + ["compress", tmp_path / "a.png", tmp_path / "a.gaac", "--weights", name],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(run + ["decompress", tmp_path / "a.gaac", tmp_path / "b.png"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "b.png") as im:
        assert im.size == (30, 20)
