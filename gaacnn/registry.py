"""Model construction from a small description: our GAACNN presets and the CompressAI control."""

from __future__ import annotations

from compressai.models import CompressionModel, MeanScaleHyperprior

from .model import GAACNN

# The ablation control: CompressAI's mean-scale hyperprior matched in size to the ``small`` preset
# (1.76 M parameters against 1.87 M). CompressAI's own low-rate size is N=128, M=192.
CONTROL_SIZE = {"N": 64, "M": 96}


def build_model(arch: str = "gaacnn", preset: str = "small", context: bool = True, **size) -> CompressionModel:
    """``arch='gaacnn'`` (preset, context) or ``arch='mshp'`` (CompressAI MeanScaleHyperprior, N, M)."""
    if arch == "gaacnn":
        return GAACNN(preset, context=context)
    if arch == "mshp":
        dims = {**CONTROL_SIZE, **size}
        return MeanScaleHyperprior(N=dims["N"], M=dims["M"])
    raise ValueError(f"unknown architecture {arch!r}: use 'gaacnn' or 'mshp'")


def describe(model: CompressionModel) -> dict:
    """The arguments that rebuild ``model`` with :func:`build_model`."""
    if isinstance(model, GAACNN):
        return {"arch": "gaacnn", "preset": model.preset.name, "context": model.context}
    if isinstance(model, MeanScaleHyperprior):
        return {"arch": "mshp", "N": model.N, "M": model.M}
    raise TypeError(f"cannot describe {type(model).__name__}")
