"""What g_s decodes in training: the noisy latent, or the rounded one with a straight-through gradient.

Where this sits: y -> [noise for the rate | round, straight-through, for g_s] -> g_s -> x_hat.
At test time g_s decodes round(y) (GAACNN's mixture codes round(y); the mean-scale models code
round(y - mean) + mean). Training g_s on y + uniform noise leaves it never having seen the rounded
latents it decodes; the authors' code feeds g_s the rounded latent with a straight-through gradient
and keeps the noise for the rate (Minnen & Singh 2020 measured the same split). ``straight_through``
switches a model to that; the rate terms are unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor


def ste_round(y: Tensor, means: Tensor | None = None) -> Tensor:
    """round(y - means) + means in the forward pass, identity gradient in the backward pass."""
    rounded = torch.round(y) if means is None else torch.round(y - means) + means
    return y + (rounded - y).detach()


def _mean_scale_hook(module, args, kwargs, output):
    """GaussianConditional(y, scales, means=...) -> (noisy y, likelihoods): replace the first in training."""
    if not module.training:
        return output
    y = args[0]
    means = kwargs.get("means", args[2] if len(args) > 2 else None)
    return ste_round(y, means), output[1]


def straight_through(model, enabled: bool = True) -> None:
    """Make ``model`` train g_s on rounded latents (GAACNN: a flag its forward reads; a mean-scale
    model such as the CompressAI control: a hook on its Gaussian conditional). Idempotent."""
    handle = getattr(model, "_ste_hook", None)
    if handle is not None:
        handle.remove()
        model._ste_hook = None
    if hasattr(model, "straight_through"):
        model.straight_through = enabled
        if model.context:
            return
    if enabled:
        model._ste_hook = model.gaussian_conditional.register_forward_hook(_mean_scale_hook, with_kwargs=True)
