"""Attention module: channel attention + coordinate attention (paper Sec. III-C, Fig. 3).

Where this sits: after each down-sampling in g_a / h_a and each up-sampling in g_s / h_s.
The module computes ``t = beta * (CoordAtt(x) + RG(x)) + gamma * skip(previous attention output)``
with learnable scalars beta (starts at 1) and gamma (starts at 0), as in the authors' code.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation gate: global average pool, 1x1 conv, ReLU, 1x1 conv, sigmoid."""

    def __init__(self, ch: int, reduction: int = 1) -> None:
        super().__init__()
        hidden = max(1, ch // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(ch, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, ch, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x)


class RCAB(nn.Module):
    """Residual channel-attention block (RCAN): conv3x3, ReLU, conv3x3, channel attention, + x."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(ch, ch, 3, padding=1),
            ChannelAttention(ch),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResidualGroup(nn.Module):
    """RCAN residual group: ``blocks`` RCABs, one conv3x3, and a skip over the group (Fig. 3a)."""

    def __init__(self, ch: int, blocks: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*[RCAB(ch) for _ in range(blocks)], nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class HSwish(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * nn.functional.relu6(x + 3.0) / 6.0


class CoordinateAttention(nn.Module):
    """Coordinate attention (Hou et al., CVPR 2021), the positional branch (Fig. 3b)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        mid = max(8, ch // 32)
        self.squeeze = nn.Sequential(nn.Conv2d(ch, mid, 1), nn.BatchNorm2d(mid), HSwish())
        self.to_h = nn.Conv2d(mid, ch, 1)
        self.to_w = nn.Conv2d(mid, ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x)

    def gate(self, x: Tensor) -> Tensor:
        """The positional weights a_h * a_w, (B, C, H, W)."""
        _, _, h, w = x.shape
        pooled_h = x.mean(dim=3, keepdim=True)  # B, C, H, 1
        pooled_w = x.mean(dim=2, keepdim=True).transpose(2, 3)  # B, C, W, 1
        mixed = self.squeeze(torch.cat((pooled_h, pooled_w), dim=2))
        a_h, a_w = mixed.split((h, w), dim=2)
        a_h = self.to_h(a_h).sigmoid()
        a_w = self.to_w(a_w.transpose(2, 3)).sigmoid()
        return a_h * a_w



class AttentionModule(nn.Module):
    """Linear weighting of channel and positional attention, with the cross-stage skip."""

    def __init__(self, ch: int, rcab_blocks: int) -> None:
        super().__init__()
        self.channel = ResidualGroup(ch, rcab_blocks)
        self.position = CoordinateAttention(ch)
        self.beta = nn.Parameter(torch.ones(1))
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        out = self.beta * (self.position(x) + self.channel(x))
        if skip is not None:
            out = out + self.gamma * skip
        return out



class PoolSkip(nn.Module):
    """Encoder-side skip: 2x average pooling of the previous attention output (+1x1 conv if widths differ)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(2)
        self.proj = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.pool(x))


class SubPixelSkip(nn.Module):
    """Decoder-side skip: sub-pixel up-sampling (conv3x3 to 4C, pixel shuffle x2)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.up = nn.Sequential(nn.Conv2d(in_ch, out_ch * 4, 3, padding=1), nn.PixelShuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.up(x)
