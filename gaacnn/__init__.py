"""gaacnn: a reproducible implementation of GAACNN (Tang et al., IEEE TCSVT 2022).

image -> g_a -> y -> h_a -> z -> bits -> h_s -> entropy parameters -> bits -> g_s -> image
"""

import warnings

# CompressAI 1.2.8 calls torch.jit.script at import time, which torch 2.14 flags as deprecated.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)

from .presets import PRESETS, Preset, get_preset  # noqa: E402

__version__ = "0.1.0"
__all__ = ["GAACNN", "PRESETS", "Preset", "get_preset", "__version__"]


def __getattr__(name: str):
    """``gaacnn.GAACNN`` on first use (PEP 562): the model pulls in torch, CompressAI and
    torch-geometric, about 10 s on a 2-core CPU, which ``gaacnn --help`` should not wait for."""
    if name == "GAACNN":
        from .model import GAACNN

        return GAACNN
    raise AttributeError(f"module 'gaacnn' has no attribute {name!r}")
