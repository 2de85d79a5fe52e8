"""3-D masked context model and the Gaussian-mixture entropy parameters (paper Sec. III-E).

Where this sits: ... -> h_s -> hyper parameters ---+
                    y_hat -> masked 3-D conv (C_m) -+-> 1x1x1 convs -> (weight, mean, scale) x 3

The latent y (M, H, W) is seen as a one-channel volume; an 11x11x11 type-A masked conv makes
each element's prediction depend only on elements earlier in (channel, row, column) order.

Coding such a model element by element is far too slow in Python. With kernel radius r,
element (c, h, w) depends only on elements with a smaller wavefront index
``t = (r+1)^2 c + (r+1) h + w`` (36c + 6h + w for r = 5), so every element that shares one t
is coded in one vectorised step. Encoder and decoder walk the same steps through
:func:`entropy_parameters_at`, so both build identical CDFs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

MIXTURES = 3


def causal_mask_3d(kernel: int) -> Tensor:
    """Type-A mask: 1 for kernel positions strictly before the centre in (c, h, w) raster order."""
    n = kernel**3
    mask = torch.zeros(n)
    mask[: n // 2] = 1.0
    return mask.view(kernel, kernel, kernel)


class MaskedConv3d(nn.Conv3d):
    """Conv3d whose weights are multiplied by a causal type-A mask."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int) -> None:
        super().__init__(in_ch, out_ch, kernel, padding=kernel // 2)
        self.register_buffer("mask", causal_mask_3d(kernel), persistent=False)

    def masked_weight(self) -> Tensor:
        return self.weight * self.mask

    def forward(self, x: Tensor) -> Tensor:
        return F.conv3d(x, self.masked_weight(), self.bias, padding=self.padding)


class EntropyParameters(nn.Module):
    """Per-element mixture parameters from context features and hyper-decoder output.

    Input: context (B, ctx_ch, M, H, W) and hyper (B, 2, M, H, W), i.e. the hyper-decoder's
    2M channels read as two values per latent element. The authors' note lists 25 inputs;
    with two hyper values per element we have ctx_ch + 2 (26 for the paper presets).
    Output: weights (softmax over K), means and scales, each (B, K, M, H, W).
    """

    def __init__(self, ctx_ch: int, hyper_ch: int = 2, hidden: tuple[int, int] = (48, 96)) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv3d(ctx_ch + hyper_ch, hidden[0], 1),
            nn.LeakyReLU(inplace=True),
            nn.Conv3d(hidden[0], hidden[1], 1),
            nn.LeakyReLU(inplace=True),
            nn.Conv3d(hidden[1], 3 * MIXTURES, 1),
        )

    def forward(self, context: Tensor, hyper: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        raw = self.net(torch.cat((context, hyper), dim=1))
        return split_mixture(raw, dim=1)

    def per_element(self, features: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Same network on a flat batch of elements (E, ctx_ch + 2) -> three (E, K) tensors."""
        x = features
        layers = [m for m in self.net if isinstance(m, nn.Conv3d)]
        for i, conv in enumerate(layers):
            x = F.linear(x, conv.weight.flatten(1), conv.bias)
            if i < len(layers) - 1:
                x = F.leaky_relu(x)
        return split_mixture(x, dim=1)


def split_mixture(raw: Tensor, dim: int) -> tuple[Tensor, Tensor, Tensor]:
    """Raw 3K outputs -> (weights softmaxed over K, means, positive scales)."""
    logits, means, scales = raw.chunk(3, dim=dim)
    return logits.softmax(dim=dim), means, F.softplus(scales) + 0.11


@dataclass
class Wavefront:
    """The decoding schedule of a (M, H, W) latent for a kernel of radius r."""

    order: Tensor  # flat element indices sorted by wavefront index
    counts: list[int]  # elements per step
    gather: Tensor  # (n_taps,) flat offsets of the causal taps in the padded volume
    padded_shape: tuple[int, int, int]

    @property
    def steps(self) -> int:
        return len(self.counts)


def wavefront(shape: tuple[int, int, int], kernel: int) -> Wavefront:
    """Group latent elements into steps that can be decoded together (see module docstring)."""
    m, h, w = shape
    r = kernel // 2
    c_idx, h_idx, w_idx = torch.meshgrid(
        torch.arange(m), torch.arange(h), torch.arange(w), indexing="ij"
    )
    t = (r + 1) ** 2 * c_idx + (r + 1) * h_idx + w_idx
    t_flat = t.flatten()
    order = torch.argsort(t_flat, stable=True)
    counts = torch.bincount(t_flat).tolist()
    counts = [n for n in counts if n > 0]
    pm, ph, pw = m + 2 * r, h + 2 * r, w + 2 * r
    taps = causal_mask_3d(kernel).flatten().nonzero().squeeze(1)
    dc = taps // (kernel * kernel) - r
    dh = (taps // kernel) % kernel - r
    dw = taps % kernel - r
    gather = dc * ph * pw + dh * pw + dw
    return Wavefront(order=order, counts=counts, gather=gather, padded_shape=(pm, ph, pw))


def padded_positions(flat: Tensor, shape: tuple[int, int, int], r: int) -> Tensor:
    """Flat indices in the (M, H, W) volume -> flat indices of the same elements in the padded volume."""
    m, h, w = shape
    c = flat // (h * w)
    y = (flat // w) % h
    x = flat % w
    ph, pw = h + 2 * r, w + 2 * r
    return (c + r) * ph * pw + (y + r) * pw + (x + r)


def volume_numel(shape: tuple[int, int, int], r: int) -> int:
    """Elements of the (M, H, W) latent padded by r on every side (the decoders' flat volume)."""
    return (shape[0] + 2 * r) * (shape[1] + 2 * r) * (shape[2] + 2 * r)


def context_taps_weight(conv: MaskedConv3d) -> tuple[Tensor, Tensor]:
    """The masked conv's causal taps as a (n_taps, out_ch) matrix and its bias (1 input channel)."""
    w = conv.weight[:, 0].flatten(1)  # out_ch, k^3
    taps = conv.mask.flatten().nonzero().squeeze(1)
    return w[:, taps].t().contiguous(), conv.bias


def entropy_parameters_at(
    volume_padded_flat: Tensor,
    positions_padded: Tensor,
    hyper_at: Tensor,
    schedule: Wavefront,
    taps_weight: Tensor,
    taps_bias: Tensor,
    params: EntropyParameters,
) -> tuple[Tensor, Tensor, Tensor]:
    """Mixture parameters of one wavefront step (E elements), from already-decoded neighbours.

    ``volume_padded_flat`` holds decoded values (zeros elsewhere and in the padding);
    ``hyper_at`` is (E, 2). Returns weights, means, scales, each (E, K).
    """
    patches = volume_padded_flat[positions_padded.unsqueeze(1) + schedule.gather.unsqueeze(0)]
    context = patches @ taps_weight + taps_bias
    return params.per_element(torch.cat((context, hyper_at), dim=1))


def mixture_cdfs(weights: Tensor, means: Tensor, scales: Tensor, abs_max: int) -> list[list[int]]:
    """Quantized CDFs (16-bit, one row per element over -abs_max..abs_max, then the escape symbol) of
    E Gaussian mixtures given as three (E, K) tensors: exactly what CompressAI's
    ``GaussianMixtureConditional._build_cdf`` returns for the transposed inputs, in a third of the
    operations (the wavefront decoder calls it once per step, thousands of times per image).

    Every element goes through CompressAI's arithmetic in CompressAI's order, so it rounds the same
    way; the basic operations (exact in IEEE arithmetic whatever the layout) run on all K components
    at once, while ``erf`` runs per component on a contiguous (E, S) block as there: its vectorised
    body and scalar tail may differ in the last bit, so the split between them must not move. The
    integer part (zero frequencies made 1 by taking from the first symbol that can spare them) runs
    in numpy. ``tests/test_context.py`` checks the equality.
    """
    count = abs_max * 2 + 1
    k, n = weights.shape[1], weights.shape[0]
    scales_ = scales.clamp(0.11, 256).t().unsqueeze(-1)  # (K, E, 1)
    means_ = (means + abs_max).t().unsqueeze(-1)
    width = (scales_ + 1e-10) * 2**0.5
    samples = torch.arange(count).unsqueeze(0).expand(n, -1)
    above = (samples + 0.5 - means_.expand(-1, -1, count)) / width.expand(-1, -1, count)
    below = (samples - 0.5 - means_.expand(-1, -1, count)) / width.expand(-1, -1, count)
    for i in range(k):  # one component at a time: the layout erf saw in CompressAI
        torch.erf(above[i], out=above[i])
        torch.erf(below[i], out=below[i])
    terms = (0.5 * (1 + above) - 0.5 * (1 + below)) * weights.t().unsqueeze(-1).expand(-1, -1, count)
    pmf = terms[0]
    for i in range(1, k):
        pmf = pmf + terms[i]
    limit = 2**16 - 1
    pmf = torch.clamp(pmf, min=1.0 / limit, max=1.0)
    scaled = torch.round(pmf * limit)
    total = torch.sum(scaled, 1, keepdim=True).expand(-1, count)
    cdf = torch.cumsum(scaled * limit / total, 1).int().numpy()
    pmf_q = np.diff(cdf, axis=1, prepend=0)
    zeros = count - np.count_nonzero(pmf_q, axis=1)
    if zeros.any():
        rows = np.nonzero(zeros)[0]
        part = pmf_q[rows]
        spare = np.where(part > zeros[rows, None], part, limit + 1).argmin(axis=1)
        part[part == 0] += 1
        part[np.arange(len(rows)), spare] -= zeros[rows]
        pmf_q[rows] = part
    out = np.zeros((n, count + 2), dtype=np.int64)
    np.cumsum(pmf_q, axis=1, out=out[:, 1:-1])
    out[:, -1] = limit + 1
    return out.tolist()
