"""The compiled wavefront coder (gaacnn/native.py) codes the very bytes and symbols of the Python loop:
its CDF rows equal context.mixture_cdfs, its files and images equal the Python coder's, and a stream
that runs out or has words left over is refused."""

import pytest
import torch

from gaacnn import GAACNN
from gaacnn.bitstream import BitstreamError
from gaacnn.codec import decode_full, encode
from gaacnn.context import mixture_cdfs
from gaacnn.native import wavefront_module

native = wavefront_module()
pytestmark = pytest.mark.skipif(native is None, reason="no C++ compiler: the Python loop decodes")


def assert_both_loops_agree(model, x: torch.Tensor, monkeypatch) -> None:
    """The compiled loop codes ``x``, then the Python loop: the same file, the same latent and pixels."""
    data = encode(model, x)
    fast = decode_full(model, data)
    monkeypatch.setenv("GAACNN_NATIVE", "0")
    assert encode(model, x) == data
    slow = decode_full(model, data)
    assert torch.equal(fast["y_hat"], slow["y_hat"]) and torch.equal(fast["x_hat"], slow["x_hat"])


def test_erf_is_one_function_whatever_the_layout():
    """The C++ loop computes erf on one buffer per step, where Python computes it per component on a
    strided view: ATen must apply the same vectorised function to every element either way."""
    x = torch.randn(3, 37, 61) * 3
    whole = torch.erf(x)
    strided = torch.empty_like(x)
    for i in range(3):
        strided[i] = torch.erf(x.transpose(0, 1)[:, i])
    assert torch.equal(whole, strided)
    assert torch.equal(whole.flatten()[:13], torch.erf(x.flatten()[:13]))


@pytest.mark.parametrize("abs_max", [1, 8, 46, 200])
def test_cdf_rows_equal_the_python_builder(abs_max):
    g = torch.Generator().manual_seed(abs_max)
    for spread in (0.05, 1.0, 10.0, 300.0):
        raw = torch.randn(41, 9, generator=g) * spread  # strided (E, K) views, as the network's chunks
        weights, means, scales = raw[:, :3].softmax(1), raw[:, 3:6], raw[:, 6:].abs() + 0.11
        assert native.step_cdfs(weights, means, scales, abs_max).tolist() == \
            mixture_cdfs(weights, means, scales, abs_max), spread


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(3)
    model = GAACNN("tiny", context=True).eval()
    model.update(force=True)
    return model


@pytest.mark.parametrize("size", [(64, 64), (50, 130)])
def test_the_same_bytes_and_image_as_the_python_loop(tiny, monkeypatch, size):
    torch.manual_seed(sum(size))
    assert_both_loops_agree(tiny, torch.rand(1, 3, *size), monkeypatch)


def test_shipped_model_codes_the_same_bytes_and_symbols(monkeypatch):
    """The 11x11x11 context of what ships, on a Kodak crop: the same file from both encoders, the same
    latent and pixels from both decoders (the file's symbol digest is checked by both)."""
    from gaacnn import manifest
    from gaacnn.data import dataset_paths, mirror_root
    from gaacnn.images import read_image

    if mirror_root() is None:
        pytest.skip("needs the data mirror")
    model = manifest.load("gaacnn-small-mse-0.1")
    x, _ = read_image(dataset_paths("kodak")[6])
    assert_both_loops_agree(model, x[..., 100:228, 300:556], monkeypatch)


def _with_latent_stream(tiny, data: bytes, change) -> bytes:
    """The file with its latent section replaced by ``change(section)`` (header and CRC rewritten)."""
    from gaacnn.bitstream import pack, unpack

    header, sections = unpack(data)
    return pack(header, [change(sections[0]), sections[1]])


@pytest.mark.parametrize("change", [lambda s: s[:-4], lambda s: s + bytes(4), lambda s: s[:2] + s[2:6]],
                         ids=["last word missing", "a word left over", "almost empty"])
def test_a_stream_that_does_not_end_with_its_symbols_is_refused(tiny, change):
    torch.manual_seed(5)
    data = encode(tiny, torch.rand(1, 3, 64, 64))
    with pytest.raises(BitstreamError, match="entropy-coded stream"):
        decode_full(tiny, _with_latent_stream(tiny, data, change))


def test_without_a_compiler_the_python_loop_codes(tiny, monkeypatch):
    import torch.utils.cpp_extension as cpp_extension

    from gaacnn import native as native_mod

    def no_compiler(**kwargs):
        raise OSError("c++: command not found")

    native_mod._build.cache_clear()
    monkeypatch.setattr(cpp_extension, "load", no_compiler)
    try:
        with pytest.warns(UserWarning, match="unavailable"):
            assert native_mod.wavefront_module() is None
        torch.manual_seed(11)
        x = torch.rand(1, 3, 64, 64)
        data = encode(tiny, x)
        assert decode_full(tiny, data)["x_hat"].shape == x.shape
    finally:
        native_mod._build.cache_clear()
    monkeypatch.undo()
    assert encode(tiny, x) == data  # and the compiled loop, back, writes the same file


def test_a_killed_build_does_not_block_the_next(tmp_path):
    import os
    import time

    from gaacnn.native import _clear_stale_lock

    fresh, stale = tmp_path / "fresh", tmp_path / "stale"
    fresh.touch()
    stale.touch()
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    _clear_stale_lock(fresh)
    _clear_stale_lock(stale)
    _clear_stale_lock(tmp_path / "none")
    assert fresh.exists() and not stale.exists()
