"""Straight-through rounding for g_s in training (quantization.py)."""

import pytest
import torch

from gaacnn.quantization import straight_through
from gaacnn.registry import build_model


def _trace(model, x):
    """One forward pass: g_a's output y, the means the Gaussian conditional got (if any), g_s's input."""
    seen = {}

    def keep(key, value):
        seen[key] = value  # returns None: the hooks only look

    hooks = [
        model.g_a.register_forward_hook(lambda mod, args, out: keep("y", out)),
        model.g_s.register_forward_pre_hook(lambda mod, args: keep("g_s_in", args[0])),
        model.gaussian_conditional.register_forward_pre_hook(
            lambda mod, args, kwargs: keep("means", kwargs.get("means")), with_kwargs=True),
    ]
    out = model(x)
    for h in hooks:
        h.remove()
    return seen, out


@pytest.mark.parametrize("arch, kw", [("mshp", {}), ("gaacnn", {"preset": "tiny"}),
                                      ("gaacnn", {"preset": "tiny", "context": False})])
def test_g_s_decodes_rounded_latents_and_gradients_pass(arch, kw):
    torch.manual_seed(0)
    model = build_model(arch, **kw).train()
    x = torch.rand(1, 3, 64, 64)

    def rounded(seen):
        means = seen.get("means")
        return torch.round(seen["y"]) if means is None else torch.round(seen["y"] - means) + means

    seen, _ = _trace(model, x)
    assert not torch.allclose(seen["g_s_in"], rounded(seen), atol=1e-4)  # by default: the noisy latent
    straight_through(model, True)
    seen, out = _trace(model, x)
    assert torch.allclose(seen["g_s_in"], rounded(seen), atol=1e-5)  # what the decoder will decode
    out["x_hat"].sum().backward()
    assert next(model.g_a.parameters()).grad.abs().sum() > 0  # the gradient reaches g_a through g_s
    straight_through(model, False)
    seen, _ = _trace(model, x)
    assert not torch.allclose(seen["g_s_in"], rounded(seen), atol=1e-4)
