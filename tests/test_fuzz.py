"""Crafted and corrupted files: the project's error or the image the file legitimately describes,
never a crash, another exception, or another image (issue: the codec under attack)."""

import json
import subprocess
import sys

import pytest
import torch

from gaacnn import GAACNN
from gaacnn.bitstream import BitstreamError
from gaacnn.codec import decode, encode
from gaacnn.crafted import oversized
from gaacnn.weights import save_weights

# Runs in a child process: a segmentation fault fails the test instead of killing pytest.
FUZZ = """
import json, sys, time
import numpy as np, torch
from gaacnn.codec import decode, encode
from gaacnn.crafted import judge, mutations, reference
from gaacnn.weights import load_model
torch.set_num_threads(1)
model = load_model(sys.argv[1])
torch.manual_seed(0)
data = encode(model, torch.rand(1, 3, 40, 70))
ref = reference(model, data)
counts, t0 = {}, time.time()
for i, (kind, mutated) in enumerate(mutations(data, np.random.default_rng(int(sys.argv[2])))):
    if i == int(sys.argv[3]):
        break
    outcome = judge(model, ref, mutated, decode)
    key = outcome if outcome in ("refused", "same") else f"{outcome} ({kind})"
    counts[key] = counts.get(key, 0) + 1
print(json.dumps({"counts": counts, "seconds": time.time() - t0}))
"""


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    torch.manual_seed(7)
    model = GAACNN("tiny", context=True).eval()
    model.update(force=True)
    path = tmp_path_factory.mktemp("fuzz") / "tiny.pth"
    save_weights(model, path, precision="float32")
    return path


def test_seeded_fuzz_never_crashes_and_never_decodes_another_image(tiny_weights):
    out = subprocess.run([sys.executable, "-c", FUZZ, str(tiny_weights), "1", "3000"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.splitlines()[-1])
    counts = result["counts"]
    assert set(counts) <= {"refused", "same"}, counts
    assert sum(counts.values()) == 3000 and counts["refused"] > 2000


SIZES = """
import sys, torch
from gaacnn.bitstream import BitstreamError
from gaacnn.codec import decode, encode
from gaacnn.crafted import oversized
from gaacnn.weights import load_model
model = load_model(sys.argv[1])
torch.manual_seed(0)
data = encode(model, torch.rand(1, 3, 64, 64))
for size in (512, 1024, 2048, 6000, 60000):
    try:
        decode(model, oversized(data, size, size))
        print(size, "decoded")
    except BitstreamError as exc:
        print(size, "refused:", exc)
"""


@pytest.mark.parametrize("weights", ["tiny", "gaacnn-small-mse-0.0035", "mshp-N64M96-mse-0.05"])
def test_headers_asking_for_more_than_the_streams_hold_are_refused(tiny_weights, weights):
    """A real 64x64 file whose header says 512..60000 px (z shape to match, CRC recomputed): the
    decoder used to read past its streams (an image made of memory at 512-2048 px, a crash at 6000)."""
    from gaacnn import manifest

    path = tiny_weights if weights == "tiny" else manifest.WEIGHTS_DIR / manifest.find(weights)["file"]
    out = subprocess.run([sys.executable, "-c", SIZES, str(path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert len(lines) == 5 and all("refused" in line for line in lines), lines
    assert "limit" in lines[-1]  # 60000 x 60000 stops at the pixel limit, before any allocation


def test_pixel_limit_is_a_parameter():
    torch.manual_seed(3)
    model = GAACNN("tiny", context=False).eval()
    model.update(force=True)
    data = encode(model, torch.rand(1, 3, 30, 40))
    with pytest.raises(BitstreamError, match="limit of 1,000"):
        decode(model, data, max_pixels=1000)
    assert decode(model, data, max_pixels=1200).shape[-2:] == (30, 40)
    assert oversized(data, 30, 40) == data  # the helper changes nothing it is not asked to
