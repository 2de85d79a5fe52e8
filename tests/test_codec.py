import subprocess
import sys

import pytest
import torch

from gaacnn import GAACNN
from gaacnn.bitstream import FORMAT_VERSION, BitstreamError
from gaacnn.codec import decode, decode_full, encode
from gaacnn.images import to_uint8
from gaacnn.weights import WeightsError, save_weights


def _expected_y_hat(model, x_pad):
    with torch.no_grad():
        y = model.g_a(x_pad)
        if model.context:
            return torch.round(y)
        scales, means = model.h_s(model.entropy_bottleneck.decompress(
            model.entropy_bottleneck.compress(model.h_a(y)), model.h_a(y).shape[-2:])).chunk(2, 1)
        return model.gaussian_conditional.quantize(y, "dequantize", means)


@pytest.mark.parametrize("size", [(1, 1), (17, 33), (64, 64), (100, 170)])
def test_round_trip_is_bit_exact(tiny_model, size):
    torch.manual_seed(2)
    x = torch.rand(1, 3, *size)
    data = encode(tiny_model, x)
    x_hat = decode(tiny_model, data)
    assert x_hat.shape == x.shape
    # the latents the decoder reconstructs equal the encoder's
    x_pad = torch.nn.functional.pad(x, _pad(size), mode="replicate")
    out = tiny_model.compress(x_pad)
    dec = tiny_model.decompress(out["strings"], out["shape"])
    assert torch.equal(dec["y_hat"], _expected_y_hat(tiny_model, x_pad))
    # decoding twice gives the same image, and re-encoding the same input the same bytes
    assert torch.equal(decode(tiny_model, data), x_hat)
    assert encode(tiny_model, x) == data


def _pad(size):
    from compressai.ops import compute_padding

    return compute_padding(*size, min_div=64)[0]


def test_small_preset_sizes(small_models):
    torch.manual_seed(3)
    for ctx, model in small_models.items():
        for size in [(1, 1), (17, 33), (512, 768)]:
            x = torch.rand(1, 3, *size)
            x_hat = decode(model, encode(model, x))
            assert x_hat.shape == x.shape, (ctx, size)


@pytest.mark.slow
@pytest.mark.parametrize("context", [False, True])
def test_small_preset_4k(small_models, context):
    model = small_models[context]
    x = torch.rand(1, 3, 2160, 3840)
    data = encode(model, x)
    assert decode(model, data).shape == x.shape


def test_decoding_in_a_separate_process_is_bit_exact(tmp_path):
    torch.manual_seed(4)
    model = GAACNN("tiny", context=True).eval()
    model.update(force=True)
    weights = tmp_path / "w.pth"
    save_weights(model, weights, half=False)
    from gaacnn.weights import load_model

    model = load_model(weights)
    x = torch.rand(1, 3, 70, 90)
    data = encode(model, x)
    (tmp_path / "img.gaac").write_bytes(data)
    here = decode_full(model, data)
    x_pad = torch.nn.functional.pad(x, _pad((70, 90)), mode="replicate")
    assert torch.equal(here["y_hat"], _expected_y_hat(model, x_pad))
    script = (
        "import torch, sys; torch.set_num_threads(1);"
        "from gaacnn.weights import load_model; from gaacnn.codec import decode_full;"
        f"m = load_model(r'{weights}');"
        f"torch.save(decode_full(m, open(r'{tmp_path / 'img.gaac'}', 'rb').read()), r'{tmp_path / 'there.pt'}')"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    there = torch.load(tmp_path / "there.pt")
    assert torch.equal(here["y_hat"], there["y_hat"])  # latents bit-exact, single-threaded too
    assert (to_uint8(here["x_hat"]).astype(int) - to_uint8(there["x_hat"]).astype(int)).max() <= 1


@pytest.fixture(scope="module")
def coded():
    torch.manual_seed(5)
    model = GAACNN("tiny", context=True).eval()
    model.update(force=True)
    return model, encode(model, torch.rand(1, 3, 40, 50))


def test_truncated_file(coded):
    model, data = coded
    for n in (3, 8, 20, len(data) - 1):
        with pytest.raises(BitstreamError, match="truncated|corrupted"):
            decode(model, data[:n])


def test_corrupted_payload(coded):
    model, data = coded
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0x40
    with pytest.raises(BitstreamError, match="corrupted"):
        decode(model, bytes(bad))


def test_not_our_file(coded):
    model, _ = coded
    with pytest.raises(BitstreamError, match="not a gaacnn file"):
        decode(model, b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(BitstreamError, match="not a gaacnn file"):
        decode(model, b"")


def test_newer_format_version(coded):
    model, data = coded
    newer = data[:4] + bytes([FORMAT_VERSION + 1]) + data[5:]
    with pytest.raises(BitstreamError, match="newer"):
        decode(model, newer)


def test_wrong_weights_are_refused(coded):
    model, data = coded
    other = GAACNN("tiny", context=True).eval()
    other.update(force=True)
    with pytest.raises(WeightsError, match="different weights"):
        decode(other, data)
    no_context = GAACNN("tiny", context=False).eval()
    no_context.update(force=True)
    with pytest.raises(WeightsError, match="context=True"):
        decode(no_context, data)
