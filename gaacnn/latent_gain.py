"""Latent gain: re-express a trained GAACNN so that its latent is ``s`` times larger, i.e. quantized
with a step of ``1/s`` in the old units, without changing any function the model computes.

Where this sits: trunk checkpoint -> [this module] -> the start of a high-lambda cooldown (trunks.py).

Why: the rate of a learned codec is set by how large g_a makes y against the unit quantization step.
A cooldown at a much larger lambda than the trunk's must grow y by retraining, and over a short
cooldown the small preset barely does (lambda 0.2, 2,000 steps: 0.42 -> 0.495 bpp on Kodak,
benchmarks/results/cooldown_length_kodak.txt). Scaling y is one scalar pair in g_a (the last attention
module's beta and gamma, Sec. III-C), and every module that reads y can be made to undo it exactly:

- g_a: ``att4`` multiplies its output by beta and its skip by gamma: both times ``s``.
- h_a and g_s read y through an ACNN or an attention module, which are made positively homogeneous
  (their biases times ``s``, the gates' first convolutions divided by ``s``, so that
  ``f(s x) = s f(x)``, ReLU and LeakyReLU commuting with positive scaling) and then divided by ``s``
  at the next linear map.
- the 3-D context model (Fig. 5) reads round(y): its kernel is divided by ``s``.
- the entropy parameters' means are multiplied by ``s``. The scales come out of a softplus plus a floor
  (``split_mixture``) and are only approximately ``s`` times larger: the one inexact part, which the
  cooldown's first steps fix.

So before any training step the model is the trunk with a finer quantizer (less quantization noise,
more bits), and the cooldown starts where a high-rate model is rather than walking there. This is the
fixed-gain form of the gain units of Cui et al. (CVPR 2021), folded into the existing parameters: the
architecture and the weight files stay as they are.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .acnn import ACNN
from .attention import RCAB, AttentionModule, ChannelAttention, CoordinateAttention, ResidualGroup
from .context import MIXTURES
from .errors import GaacnnError

SCALE_FLOOR = 0.11  # split_mixture: scales = softplus(raw) + 0.11


def _homogeneous_acnn(acnn: ACNN, s: float) -> None:
    """ACNN(s x) = s ACNN(x): its blocks are linear maps plus biases joined by ReLUs."""
    for block in acnn.blocks:
        for conv in (block.square, block.vertical, block.horizontal):
            conv.bias.mul_(s)


def _invariant_gate(first_conv: nn.Conv2d, s: float) -> None:
    """A gate whose first map is linear in the pooled input stays the same on ``s`` times that input."""
    first_conv.weight.div_(s)


def _homogeneous_attention(att: AttentionModule, s: float) -> None:
    """beta (CoordAtt(x) + RG(x)) with CoordAtt(s x) = s CoordAtt(x) and RG(s x) = s RG(x)."""
    position: CoordinateAttention = att.position
    _invariant_gate(position.squeeze[0], s)
    group: ResidualGroup = att.channel
    for layer in group.body:
        if isinstance(layer, RCAB):
            first, _, second, gate = layer.body
            first.bias.mul_(s)
            second.bias.mul_(s)
            assert isinstance(gate, ChannelAttention)
            _invariant_gate(gate.gate[1], s)
        else:
            layer.bias.mul_(s)


def _softplus_inverse(x: torch.Tensor) -> torch.Tensor:
    return x + torch.log(-torch.expm1(-x))


@torch.no_grad()
def _scale_entropy_parameters(last: nn.Conv3d, s: float) -> None:
    """Means times ``s`` (exact); scales approximately times ``s``: the raw output ``r`` that gives
    scale ``softplus(r) + floor`` is moved to the affine map of ``r`` that is exact at the channel's
    bias (``r = b``) and has the slope there of the exact map."""
    k = MIXTURES
    last.weight[k:2 * k].mul_(s)
    last.bias[k:2 * k].mul_(s)
    b = last.bias[2 * k:]
    target = _softplus_inverse(s * (torch.nn.functional.softplus(b) + SCALE_FLOOR) - SCALE_FLOOR)
    slope = s * torch.sigmoid(b) / torch.sigmoid(target)  # d r'/d r at r = b
    last.weight[2 * k:].mul_(slope.view(-1, *([1] * (last.weight.dim() - 1))))
    last.bias[2 * k:] = target


@torch.no_grad()
def scale_latent(model: nn.Module, s: float) -> nn.Module:
    """Rescale a context-model GAACNN in place so that y is ``s`` times larger (module docstring)."""
    if not getattr(model, "context", False):
        raise GaacnnError("scale_latent needs a GAACNN with its context model")
    if not (s > 0 and math.isfinite(s)):
        raise GaacnnError(f"latent gain must be a positive number, not {s}")
    g_a, h_a, g_s = model.g_a, model.h_a, model.g_s
    g_a.att4.beta.mul_(s)
    g_a.att4.gamma.mul_(s)
    # h_a: y -> ACNN -> conv (+ LeakyReLU) and y -> pool -> gamma
    _homogeneous_acnn(h_a.acnn1, s)
    h_a.down1[0].weight.div_(s)
    h_a.att1.gamma.div_(s)
    # g_s: y_hat -> attention -> (up-sampling conv, sub-pixel skip conv) and y_hat -> long skip
    _homogeneous_attention(g_s.att0, s)
    g_s.att0.beta.div_(s)
    g_s.long_skip.weight.div_(s)
    model.context_model.weight.div_(s)
    _scale_entropy_parameters(model.entropy_parameters.net[-1], s)
    return model


__all__ = ["scale_latent"]
