import torch

from gaacnn import GAACNN
from gaacnn.context import (
    MaskedConv3d,
    causal_mask_3d,
    context_taps_weight,
    entropy_parameters_at,
    padded_positions,
    wavefront,
)


def test_mask_type_a_counts():
    mask = causal_mask_3d(11)
    assert mask.sum() == 665  # 5*121 + 5*11 + 5 positions before the centre
    assert mask[5, 5, 5] == 0 and mask[5, 5, 4] == 1 and mask[5, 5, 6] == 0 and mask[4, 10, 10] == 1


def test_masked_conv_is_causal():
    torch.manual_seed(0)
    conv = MaskedConv3d(1, 4, 5)
    vol = torch.randn(1, 1, 6, 5, 7)
    base = conv(vol)
    c, h, w = 3, 2, 4
    changed = vol.clone()
    changed[0, 0, c, h, w] += 10.0
    diff = (conv(changed) - base).abs().sum(1)[0]  # (M, H, W)
    flat = diff.flatten()
    index = (c * 5 + h) * 7 + w
    assert torch.all(flat[: index + 1] == 0), "an element at or before the change moved"
    assert flat[index + 1 :].sum() > 0


def test_wavefront_respects_every_dependency():
    for kernel in (5, 11):
        r = kernel // 2
        taps = causal_mask_3d(kernel).flatten().nonzero().squeeze(1)
        dc = taps // (kernel * kernel) - r
        dh = (taps // kernel) % kernel - r
        dw = taps % kernel - r
        t = (r + 1) ** 2 * dc + (r + 1) * dh + dw
        assert torch.all(t < 0)
    sched = wavefront((4, 3, 5), 5)
    assert sum(sched.counts) == 60 and sched.steps == 9 * 3 + 3 * 2 + 4 + 1


def test_per_step_parameters_match_the_convolution():
    torch.manual_seed(0)
    model = GAACNN("tiny").eval()
    y = torch.round(torch.randn(1, 8, 4, 6) * 3)
    hyper = torch.randn(1, 16, 4, 6)
    w_ref, m_ref, s_ref = model.mixture(y, hyper)
    shape = (8, 4, 6)
    sched = wavefront(shape, 5)
    vol = torch.zeros(sched.padded_shape).flatten()
    all_idx = torch.arange(8 * 4 * 6)
    vol[padded_positions(all_idx, shape, 2)] = y.flatten()
    tw, tb = context_taps_weight(model.context_model)
    w, m, s = entropy_parameters_at(
        vol, padded_positions(all_idx, shape, 2), hyper[0].reshape(2, -1).t(), sched, tw, tb,
        model.entropy_parameters,
    )
    assert torch.allclose(w, w_ref[0].flatten(1).t(), atol=1e-5)
    assert torch.allclose(m, m_ref[0].flatten(1).t(), atol=1e-5)
    assert torch.allclose(s, s_ref[0].flatten(1).t(), atol=1e-5)


def test_mixture_cdfs_equal_compressai_exactly():
    """The fast CDF builder of the wavefront coder gives CompressAI's integers exactly (the bits of
    every file written before it depend on that), including rows whose zero frequencies are fixed."""
    from compressai.entropy_models import GaussianMixtureConditional

    from gaacnn.context import mixture_cdfs

    reference = GaussianMixtureConditional(K=3)
    g = torch.Generator().manual_seed(0)
    for e, abs_max, spread in [(1, 1, 1.0), (37, 8, 3.0), (150, 46, 10.0), (63, 74, 30.0), (5, 200, 0.05)]:
        weights = torch.rand(e, 3, generator=g).softmax(1)
        means = (torch.rand(e, 3, generator=g) - 0.5) * 2 * spread
        scales = torch.rand(e, 3, generator=g) * spread + 0.05
        ours = mixture_cdfs(weights, means, scales, abs_max)
        theirs = reference._build_cdf(scales.t().clone(), means.t().clone(), weights.t().clone(), abs_max)
        assert ours == theirs.tolist(), (e, abs_max)
    # a sharp peak leaves the other symbols below one count: the zero-frequency fix runs too
    weights, means, scales = torch.full((4, 3), 1 / 3), torch.zeros(4, 3), torch.full((4, 3), 0.11)
    scaled = reference._build_cdf(scales.t().clone(), means.t().clone(), weights.t().clone(), 60)
    pmf = torch.diff(scaled[:, :-1], dim=1)
    assert (pmf == 1).sum() > 100 and pmf.min() >= 1
    theirs = scaled
    assert mixture_cdfs(weights, means, scales, 60) == theirs.tolist()
