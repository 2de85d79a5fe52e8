"""Model sizes. ``paper-low`` / ``paper-high`` are the authors' sizes (design note); ``small``
keeps the same topology with fewer channels and residual blocks, for a 2-core CPU."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Preset:
    name: str
    stem: int  # C0: channels at full resolution (first and last stage)
    width: int  # N1: channels at H/2 and H/4 in g_a / g_s
    latent: int  # M: channels of y
    hyper: int  # N2: channels of z
    rcab_blocks: int  # residual channel-attention blocks per attention module (authors: 6)
    acnn_blocks: int  # asymmetric blocks per ACNN module (authors: 3)
    first_acnn_blocks: int  # in the first encoder stage (authors: 4)
    context_kernel: int  # 3-D masked conv size (authors: 11)
    context_channels: int  # its output channels (authors: 24)
    param_hidden: tuple[int, int]  # 1x1x1 convs of the entropy parameter net (authors: 48, 96)
    param_resblocks: int  # residual blocks in h_s's parameter network (authors: 3)
    gat_dropout: float = 0.6
    # Output channels of g_s's three up-sampling stages. None: the authors' M -> M -> N2 (design note;
    # with it the paper presets count 88.0 M / 225.7 M parameters against the authors' 86 M / 224 M).
    synthesis_outputs: tuple[int, int, int] | None = None

    def synthesis_widths(self) -> tuple[int, int, int]:
        return self.synthesis_outputs or (self.latent, self.latent, self.hyper)

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, Preset] = {
    "paper-low": Preset("paper-low", 64, 128, 192, 128, 6, 3, 4, 11, 24, (48, 96), 3),
    "paper-high": Preset("paper-high", 64, 128, 320, 128, 6, 3, 4, 11, 24, (48, 96), 3),
    # 1.87 M parameters. Its g_s keeps the stage widths its shipped weights were trained with,
    # M -> N1 -> N1 (40, 32, 32): N1 = N2 here, so only the middle stage is narrower than the
    # authors' M -> M -> N2 (40, 40, 32), by 8 channels.
    "small": Preset("small", 16, 32, 40, 32, 1, 2, 2, 11, 12, (24, 48), 1, synthesis_outputs=(40, 32, 32)),
    # For unit tests only: same code paths, a few thousand parameters.
    "tiny": Preset("tiny", 4, 8, 8, 8, 1, 1, 1, 5, 4, (8, 8), 1, gat_dropout=0.0),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
