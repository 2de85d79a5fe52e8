"""gaacnn: a reproducible implementation of GAACNN (Tang et al., IEEE TCSVT 2022).

image -> g_a -> y -> h_a -> z -> bits -> h_s -> entropy parameters -> bits -> g_s -> image
"""

import warnings

# CompressAI 1.2.8 calls torch.jit.script at import time, which torch 2.14 flags as deprecated.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)

from .model import GAACNN  # noqa: E402
from .presets import PRESETS, Preset, get_preset  # noqa: E402

__version__ = "0.1.0"
__all__ = ["GAACNN", "PRESETS", "Preset", "get_preset", "__version__"]
