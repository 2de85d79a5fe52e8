"""The four transforms of GAACNN (paper Fig. 1), in the authors' code order (design note).

image x --g_a--> y --h_a--> z  ...  z_hat --h_s--> hyper parameters ; y_hat --g_s--> x_hat
"""

from __future__ import annotations

from compressai.layers import GDN
from compressai.models.utils import conv, deconv
from torch import Tensor, nn

from .acnn import ACNN, ACBlock
from .attention import AttentionModule, PoolSkip, SubPixelSkip
from .graph import GraphAttentionBranch
from .presets import Preset


class AnalysisTransform(nn.Module):
    """g_a: x (3, H, W) -> y (M, H/16, W/16).

    The long skip (a stride-16 conv into the last stage) branches after the first stage's ACNN,
    "from the first stage" as the design note reads the authors' code; Fig. 1 draws it from the
    stem's output, one ACNN earlier. Kept: the shipped weights were trained this way, and moving it
    would change their decoded images under the same preset name."""

    def __init__(self, p: Preset) -> None:
        super().__init__()
        c0, n1, m, b = p.stem, p.width, p.latent, p.rcab_blocks
        self.stem = nn.Sequential(conv(3, c0, 5, 1), GDN(c0), nn.ReLU(inplace=True))
        self.acnn0 = ACNN(c0, p.first_acnn_blocks)
        self.down1 = nn.Sequential(conv(c0, n1), GDN(n1))
        self.att1 = AttentionModule(n1, b)
        self.acnn1 = ACNN(n1, p.acnn_blocks)
        self.down2 = nn.Sequential(conv(n1, m), GDN(m))
        self.att2 = AttentionModule(m, b)
        self.skip2 = PoolSkip(n1, m)
        self.acnn2 = ACNN(m, p.acnn_blocks)
        self.down3 = nn.Sequential(conv(m, m), GDN(m))
        self.att3 = AttentionModule(m, b)
        self.skip3 = PoolSkip(m, m)
        self.acnn3 = ACNN(m, p.acnn_blocks)
        self.down4 = conv(m, m)
        self.long_skip = conv(c0, m, 5, 16)  # authors: conv5x5 with stride 16 from the first stage
        self.att4 = AttentionModule(m, b)
        self.skip4 = PoolSkip(m, m)

    def forward(self, x: Tensor) -> Tensor:
        s0 = self.acnn0(self.stem(x))
        t1 = self.att1(self.down1(s0))
        t2 = self.att2(self.down2(self.acnn1(t1)), self.skip2(t1))
        t3 = self.att3(self.down3(self.acnn2(t2)), self.skip3(t2))
        d4 = self.down4(self.acnn3(t3)) + self.long_skip(s0)
        return self.att4(d4, self.skip4(t3))


class SynthesisTransform(nn.Module):
    """g_s: y_hat (M, H/16, W/16) -> x_hat (3, H, W).

    Three stages {up, ACNN, attention + sub-pixel skip} with outputs M -> M -> N2 (the authors'
    code; ``Preset.synthesis_widths``), then up to C0, ACNN, the long skip from y, ACBlock, conv."""

    def __init__(self, p: Preset) -> None:
        super().__init__()
        c0, m, b = p.stem, p.latent, p.rcab_blocks
        self.att0 = AttentionModule(m, b)
        outs = p.synthesis_widths()
        widths = list(zip((m, *outs[:-1]), outs))
        self.ups = nn.ModuleList(nn.Sequential(deconv(i, o), GDN(o, inverse=True)) for i, o in widths)
        self.acnns = nn.ModuleList(ACNN(o, p.acnn_blocks) for _, o in widths)
        self.atts = nn.ModuleList(AttentionModule(o, b) for _, o in widths)
        self.skips = nn.ModuleList(SubPixelSkip(i, o) for i, o in widths)
        self.up_last = nn.Sequential(deconv(outs[-1], c0), GDN(c0, inverse=True))
        self.acnn_last = ACNN(c0, p.acnn_blocks)
        self.long_skip = nn.ConvTranspose2d(m, c0, 16, stride=16)
        self.head = nn.Sequential(ACBlock(c0), conv(c0, 3, 5, 1))

    def forward(self, y_hat: Tensor) -> Tensor:
        t = self.att0(y_hat)
        for up, acnn, att, skip in zip(self.ups, self.acnns, self.atts, self.skips):
            t = att(acnn(up(t)), skip(t))
        u = self.acnn_last(self.up_last(t)) + self.long_skip(y_hat)
        return self.head(u)


class HyperAnalysis(nn.Module):
    """h_a: y (M, H/16) -> z (N2, H/64), with graph attention at H/32."""

    def __init__(self, p: Preset) -> None:
        super().__init__()
        m, b = p.latent, p.rcab_blocks
        self.acnn1 = ACNN(m, p.acnn_blocks)
        self.down1 = nn.Sequential(conv(m, m), nn.LeakyReLU(inplace=True))
        self.att1 = AttentionModule(m, b)
        self.skip1 = PoolSkip(m, m)
        self.gat = GraphAttentionBranch(m, p.gat_dropout)
        self.acnn2 = ACNN(m, p.acnn_blocks)
        self.down2 = nn.Sequential(conv(m, m), nn.LeakyReLU(inplace=True))
        self.att2 = AttentionModule(m, b)
        self.skip2 = PoolSkip(m, m)
        self.to_z = conv(m, p.hyper, 3, 1)

    def forward(self, y: Tensor) -> Tensor:
        h = self.down1(self.acnn1(y))
        t1 = self.att1(h, self.skip1(y)) + self.gat(h)
        t2 = self.att2(self.down2(self.acnn2(t1)), self.skip2(t1))
        return self.to_z(t2)


class ResidualBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1), nn.LeakyReLU(inplace=True), nn.Conv2d(ch, ch, 3, padding=1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class HyperSynthesis(nn.Module):
    """h_s: z_hat (N2, H/64) -> hyper parameters (2M, H/16), with graph attention at H/32."""

    def __init__(self, p: Preset) -> None:
        super().__init__()
        m, b = p.latent, p.rcab_blocks
        self.from_z = conv(p.hyper, m, 3, 1)
        self.att0 = AttentionModule(m, b)
        self.up1 = nn.Sequential(deconv(m, m), nn.LeakyReLU(inplace=True))
        self.acnn1 = ACNN(m, p.acnn_blocks)
        self.att1 = AttentionModule(m, b)
        self.skip1 = SubPixelSkip(m, m)
        self.gat = GraphAttentionBranch(m, p.gat_dropout)
        self.up2 = nn.Sequential(deconv(m, m), nn.LeakyReLU(inplace=True))
        self.acnn2 = ACNN(m, p.acnn_blocks)
        self.params = nn.Sequential(
            *[ResidualBlock(m) for _ in range(p.param_resblocks)], conv(m, 2 * m, 3, 1)
        )

    def forward(self, z_hat: Tensor) -> Tensor:
        t0 = self.att0(self.from_z(z_hat))
        u = self.acnn1(self.up1(t0))
        t1 = self.att1(u, self.skip1(t0)) + self.gat(u)
        return self.params(self.acnn2(self.up2(t1)))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = [
    "AnalysisTransform",
    "SynthesisTransform",
    "HyperAnalysis",
    "HyperSynthesis",
    "count_parameters",
]
