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


def test_tracked_tree_fits_a_gpu_machine():
    """The device tool takes a working copy of at most 64 MiB: the tracked tree stays under 60 MB."""
    import subprocess
    from pathlib import Path

    root = manifest.WEIGHTS_DIR.parent
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True)
    if listed.returncode:
        pytest.skip("not a git checkout")
    files = [root / f for f in listed.stdout.decode().split("\0") if f]
    total = sum(p.stat().st_size for p in files if Path(p).is_file())
    assert 1e6 < total < 60e6, f"tracked tree is {total / 1e6:.1f} MB"


def test_int8_weights_are_half_the_size_and_within_half_a_step(tmp_path):
    """int8 files (``precision="int8"``) keep every large tensor within half a quantization step of
    its value, the small ones in float16, at a bit over half a float16 file's size."""
    from gaacnn.registry import build_model
    from gaacnn.weights import dequantize_int8, load_model, quantize_int8, save_weights

    torch.manual_seed(0)
    model = build_model("gaacnn", preset="small").eval()
    model.update(force=True)
    sizes = {}
    for precision in ("float16", "int8"):
        save_weights(model, tmp_path / f"{precision}.pth", precision=precision)
        sizes[precision] = (tmp_path / f"{precision}.pth").stat().st_size
    assert sizes["int8"] < 0.6 * sizes["float16"]
    loaded = load_model(tmp_path / "int8.pth").state_dict()
    for name, value in model.state_dict().items():
        if value.is_floating_point() and value.dim() >= 2 and value.numel() >= 1024:
            codes, scale = quantize_int8(value)
            step = scale.reshape(-1, *[1] * (value.dim() - 1))
            assert torch.all((loaded[name] - value).abs() <= step / 2 + 1e-7), name
            assert torch.equal(loaded[name], dequantize_int8(codes, scale))
    x = torch.rand(1, 3, 64, 64)
    int8_model = load_model(tmp_path / "int8.pth")
    assert decode(int8_model, encode(int8_model, x)).shape == x.shape
    with pytest.raises(ValueError, match="precision"):
        save_weights(model, tmp_path / "x.pth", precision="int4")


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
