import subprocess
import sys

import numpy as np
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
def test_small_preset_4k(small_models):
    """A 4K frame codes and decodes (the GAT hyperprior's graph and the context's wavefront at full size).
    The model with context only: the one without runs the same transforms and hyperprior, and the sizes
    above cover its own decoding path (97 s of the suite's ten minutes here)."""
    model = small_models[True]
    x = torch.rand(1, 3, 2160, 3840)
    data = encode(model, x)
    assert decode(model, data).shape == x.shape


def test_decoding_in_a_separate_process_is_bit_exact(tmp_path):
    torch.manual_seed(4)
    model = GAACNN("tiny", context=True).eval()
    model.update(force=True)
    weights = tmp_path / "w.pth"
    save_weights(model, weights, precision="float32")
    from gaacnn.weights import load_model

    model = load_model(weights)
    here, there = _decode_here_and_elsewhere(
        model, torch.rand(1, 3, 70, 90), tmp_path,
        f"torch.set_num_threads(1); from gaacnn.weights import load_model; m = load_model(r'{weights}')")
    assert torch.equal(here["y_hat"], there["y_hat"])  # latents bit-exact, single-threaded too
    assert (to_uint8(here["x_hat"]).astype(int) - to_uint8(there["x_hat"]).astype(int)).max() <= 1


def _decode_here_and_elsewhere(model, x, tmp_path, load_code: str) -> tuple[dict, dict]:
    """Encode ``x``, decode it here (checking the latents against the encoder's) and in a fresh
    process whose ``load_code`` defines the model as ``m``; returns both decodings."""
    data = encode(model, x)
    (tmp_path / "img.gaac").write_bytes(data)
    here = decode_full(model, data)
    x_pad = torch.nn.functional.pad(x, _pad(tuple(x.shape[-2:])), mode="replicate")
    assert torch.equal(here["y_hat"], _expected_y_hat(model, x_pad))
    # the same thread count there: the symbols never depend on it, but g_s's float sums may round a
    # pixel the other way with another (measured: 1 thread here, 2 there)
    script = (f"import torch; torch.set_num_threads({torch.get_num_threads()}); "
              f"from gaacnn.codec import decode_full; {load_code}; "
              f"torch.save(decode_full(m, open(r'{tmp_path / 'img.gaac'}', 'rb').read()), r'{tmp_path / 'there.pt'}')")
    subprocess.run([sys.executable, "-c", script], check=True)
    return here, torch.load(tmp_path / "there.pt")


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


def _as_version_1(data: bytes) -> bytes:
    """The same file in format version 1 (no symbol digest, no writer), as gaacnn wrote until v2."""
    import struct
    import zlib

    from gaacnn.bitstream import unpack

    header, sections = unpack(data)
    body = bytearray(b"GAAC") + struct.pack(">BB", 1, int(header.context))
    for name in (header.arch, header.preset):
        body += struct.pack(">B", len(name)) + name.encode()
    body += header.fingerprint + struct.pack(">IIHHB", header.height, header.width, *header.z_shape, 2)
    for s in sections:
        body += struct.pack(">I", len(s)) + s
    return bytes(body) + struct.pack(">I", zlib.crc32(bytes(body)))


def test_version_1_files_still_decode(tiny_model):
    torch.manual_seed(8)
    data = encode(tiny_model, torch.rand(1, 3, 50, 90))
    old = _as_version_1(data)
    assert old[4] == 1 and len(old) < len(data)
    assert torch.equal(decode(tiny_model, old), decode(tiny_model, data))


@pytest.mark.parametrize("version", [1, 2])
def test_a_decoder_with_other_probabilities_refuses(tiny_model, monkeypatch, version):
    """Another device kind (or BLAS, or torch) computes slightly different entropy parameters: the
    decoder must refuse rather than return another image, and say who wrote the file and who reads it."""
    from gaacnn import context, native
    from gaacnn import model as model_mod

    torch.manual_seed(9)
    data = encode(tiny_model, torch.rand(1, 3, 64, 96))
    if version == 1:
        data = _as_version_1(data)
    real = context.entropy_parameters_at if tiny_model.context else None

    def nudged(*args, **kwargs):
        weights, means, scales = real(*args, **kwargs)
        return weights, means + 0.02, scales * 1.01

    if tiny_model.context:  # both wavefront loops: Python's, and the compiled one (native.py)
        monkeypatch.setattr(model_mod, "entropy_parameters_at", nudged)
        compiled = native.wavefront_module()
        if compiled is not None:
            monkeypatch.setattr(model_mod, "wavefront_module", lambda: _NudgedNative(compiled))
    else:  # the hyperprior's means and scales come from h_s
        h_s = tiny_model.h_s.forward
        monkeypatch.setattr(tiny_model.h_s, "forward", lambda z: h_s(z) * 1.01 + 0.02)
    with pytest.raises(BitstreamError) as err:
        decode(tiny_model, data)
    if version == 2:
        assert "written by: cpu" in str(err.value) and "decoding on: cpu" in str(err.value)


class _NudgedNative:
    """The compiled wavefront module with the context's bias nudged."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def decode(self, *args):
        args = list(args)
        args[8] = args[8] + 0.02  # taps_bias
        return self.inner.decode(*args)


def test_shipped_small_model_is_bit_exact_in_another_process(tmp_path):
    """What ships, with the 11x11x11 context: encode here, decode in a fresh process, compare the
    decoded symbols (latents) and pixels, on a real image that is not a multiple of 64."""
    from gaacnn import manifest
    from gaacnn.data import dataset_paths, mirror_root
    from gaacnn.images import read_image

    if mirror_root() is None:
        pytest.skip("needs the data mirror")
    name = "gaacnn-small-mse-0.0035"
    model = manifest.load(name)
    assert model.preset.context_kernel == 11
    x, _ = read_image(dataset_paths("kodak")[22])
    x = x[..., 200:300, 300:470]  # 100 x 170: pads to 128 x 192
    here, there = _decode_here_and_elsewhere(model, x, tmp_path,
                                             f"from gaacnn import manifest; m = manifest.load('{name}')")
    assert torch.equal(here["y_hat"], there["y_hat"])
    assert np.array_equal(to_uint8(here["x_hat"]), to_uint8(there["x_hat"]))


def test_fast_wavefront_writes_the_bytes_compressai_cdfs_write(monkeypatch):
    """The wavefront coder's own CDF builder and per-step precomputation change no bit: the shipped
    small model codes a Kodak crop to the same bytes with CompressAI's ``_build_cdf`` in its place."""
    from gaacnn import manifest
    from gaacnn import model as model_mod
    from gaacnn.data import dataset_paths, mirror_root
    from gaacnn.images import read_image

    if mirror_root() is None:
        pytest.skip("needs the data mirror")
    monkeypatch.setenv("GAACNN_NATIVE", "0")  # the Python loop (tests/test_native.py: the compiled one = it)
    model = manifest.load("gaacnn-small-mse-0.1")
    x, _ = read_image(dataset_paths("kodak")[3])
    x = x[..., 150:278, 200:392]
    fast = encode(model, x)

    def compressai_cdfs(weights, means, scales, abs_max):
        return model.gaussian_conditional._build_cdf(
            scales.t().clone(), means.t().clone(), weights.t().clone(), abs_max).tolist()

    monkeypatch.setattr(model_mod, "mixture_cdfs", compressai_cdfs)
    assert encode(model, x) == fast
    assert torch.equal(decode(model, fast), decode(model, fast))
