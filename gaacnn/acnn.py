"""Asymmetric convolution blocks (paper Sec. III-B, Fig. 2).

Where this sits: every stage of g_a, g_s, h_a and h_s contains an ACNN module;
image -> [g_a: ACNN ...] -> y -> [h_a: ACNN ...] -> z -> ... -> [g_s: ACNN ...] -> image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ACBlock(nn.Module):
    """Three parallel same-padded convolutions (3x1, 3x3, 1x3) whose outputs are summed (Fig. 2).

    Convolution is linear, so the sum equals one 3x3 convolution whose kernel is the square kernel with
    the 3x1 and 1x3 kernels added onto its centre column and row (the ACNet property). ``forward``
    builds that kernel from the three trainable ones at every call and runs one convolution: the
    function and the gradients of all three kernels are the same as those of the literal three-branch
    sum (``branches``; equal up to float rounding, tested), at 9 instead of 15 multiply-adds per output
    and one kernel call instead of three plus two additions (``benchmarks/train_step.py``).

    ``literal_in_eval``: in eval mode, run the three branches as written. The model sets it on h_s's
    blocks, whose output becomes entropy parameters: a file decodes only with the very CDFs that wrote
    it, and every file written before the fold had them from the three-branch sums.
    """

    literal_in_eval: bool = False

    def __init__(self, in_ch: int, out_ch: int | None = None) -> None:
        super().__init__()
        out_ch = out_ch or in_ch
        self.square = nn.Conv2d(in_ch, out_ch, (3, 3), padding=(1, 1))
        self.vertical = nn.Conv2d(in_ch, out_ch, (3, 1), padding=(1, 0))
        self.horizontal = nn.Conv2d(in_ch, out_ch, (1, 3), padding=(0, 1))

    def kernel(self) -> tuple[Tensor, Tensor]:
        """The folded 3x3 weight and bias, differentiable in the three branches' parameters."""
        weight = (self.square.weight + F.pad(self.vertical.weight, (1, 1, 0, 0))
                  + F.pad(self.horizontal.weight, (0, 0, 1, 1)))
        return weight, self.square.bias + self.vertical.bias + self.horizontal.bias

    def forward(self, x: Tensor) -> Tensor:
        if self.literal_in_eval and not self.training:
            return self.branches(x)
        weight, bias = self.kernel()
        return F.conv2d(x, weight, bias, padding=1)

    def branches(self, x: Tensor) -> Tensor:
        """The block as Fig. 2 draws it: three convolutions, summed (the reference ``forward`` equals)."""
        return self.square(x) + self.vertical(x) + self.horizontal(x)

    @torch.no_grad()
    def fold(self) -> nn.Conv2d:
        """One 3x3 convolution computing the same function: the block trains with three kernels and
        can run inference with one."""
        conv = nn.Conv2d(self.square.in_channels, self.square.out_channels, 3, padding=1)
        weight, bias = self.kernel()
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
        return conv


class ACNN(nn.Module):
    """Chain of asymmetric blocks with a dense residual sum (Fig. 2).

    ``out = x + b1 + b2 + ... + bn`` with ``b1 = AC(x)`` and ``b(i+1) = AC(relu(b(i)))``.
    The authors' code uses four blocks in the first encoder stage and three elsewhere.

    Fig. 2 draws a ReLU before the first block too; the design note (read from the authors' code,
    which produced the published numbers) says it may be omitted, and every shipped weights file
    was trained without it. Adding it would change what those files decode under the same preset
    name, so it stays out: the modules that precede an ACNN here end in GDN, LeakyReLU or an
    attention sum, so the first block sees signed features either way.
    """

    def __init__(self, ch: int, blocks: int = 3) -> None:
        super().__init__()
        if blocks < 1:
            raise ValueError("an ACNN module needs at least one asymmetric block")
        self.blocks = nn.ModuleList(ACBlock(ch) for _ in range(blocks))

    def forward(self, x: Tensor) -> Tensor:
        out = x
        b = x
        for i, block in enumerate(self.blocks):
            b = block(b if i == 0 else torch.relu(b))
            out = out + b
        return out


class PlainStack(nn.Module):
    """The ACNN module's topology with plain 3x3 convolutions instead of ACBlocks: the baseline that
    notebook 01 compares receptive fields against (same dense residual sum, no 1-D kernels)."""

    def __init__(self, ch: int, blocks: int = 3) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(ch, ch, 3, padding=1) for _ in range(blocks))

    def forward(self, x: Tensor) -> Tensor:
        out, b = x, x
        for i, conv in enumerate(self.convs):
            b = conv(b if i == 0 else torch.relu(b))
            out = out + b
        return out
