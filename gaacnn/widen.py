"""Function-preserving widening of a trained GAACNN (Net2Net, Chen et al., ICLR 2016, "Net2WiderNet"
with zero-initialised fan-out instead of replicated units).

Why: the ``small`` preset's transforms cap its top rate near 29.2 dB on Kodak however long it trains
(docs/training-log.md, fourth session), and training a wider preset from scratch would throw away the
CPU-hours its trunk holds. Widening g_a / g_s's internal channels so that the wider model computes
exactly what the trained one did lets the extra channels start from the trunk's quality:

- a layer's new *output* channels get the wider model's fresh initialisation (they compute something);
- every old output's weights from a new *input* channel are zero (so nothing old sees them yet);
- GDN's gamma, initialised diagonal, already keeps old and new channels apart.

Training then moves the zero weights (their gradients are the new channels' activations times the old
outputs' gradients), and the new channels join in. Only widths may grow; the latent y (M) and z (N2)
must keep their sizes, so the entropy models, the context model and every bitstream detail carry over.
Where this sits: x -> [g_a widened] -> y -> h_a -> z -> ... -> y_hat -> [g_s widened] -> x_hat.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from .errors import GaacnnError
from .model import GAACNN
from .presets import Preset, get_preset

# small with g_a's H/2 and g_s's H/8-H/2 stages as wide as the control's (64 channels; 3.05 M parameters,
# 1.8-1.9x small's CPU step, benchmarks/results/train_throughput_cpu_medium.txt). Measured: widened from the
# trunk and cooled down 1,500 steps at lambda 0.1, it codes where small does (+0.01 dB on Kodak,
# benchmarks/results/widen_top_gaacnn.txt); grown beside small at constant lr for the same two CPU-hours, it ends
# where small does (ahead per step, 1.8x the step; benchmarks/results/widen_stretch_gaacnn.txt). It lives here,
# not in presets.PRESETS, because that module's source is part of every cached model row's code hash
# (evaluate.MODEL_CODE): an experiment must not send every shipped model's evaluation back to be measured.
MEDIUM = Preset("medium", 16, 64, 40, 32, 1, 2, 2, 11, 12, (24, 48), 1, synthesis_outputs=(64, 64, 64))
WIDER = {MEDIUM.name: MEDIUM}


def preset_named(name: str | Preset) -> Preset:
    """A preset of presets.PRESETS or one of the widened ones here, by name."""
    if isinstance(name, Preset):
        return name
    return WIDER[name] if name in WIDER else get_preset(name)


# The entropy models' coding tables (CompressAI buffers), the same whatever the transforms' widths.
CODING_TABLES = ("_offset", "_quantized_cdf", "_cdf_length")


def _io_dims(module: nn.Module) -> tuple[int, int] | None:
    """(output dim, input dim) of a convolution's weight; None for anything else."""
    if isinstance(module, nn.ConvTranspose2d):
        return 1, 0
    if isinstance(module, nn.Conv2d):
        return 0, 1
    return None


def widened_tensor(old: Tensor, fresh: Tensor, io_dims: tuple[int, int] | None = None) -> Tensor:
    """``fresh`` (the wider model's initial value) with ``old`` in its leading block; for a convolution
    weight (``io_dims`` given) the old outputs' weights from new inputs set to zero."""
    if old.dim() != fresh.dim() or any(o > f for o, f in zip(old.shape, fresh.shape)):
        raise GaacnnError(f"cannot widen a tensor of shape {tuple(old.shape)} into {tuple(fresh.shape)}")
    out = fresh.detach().clone()
    out[tuple(slice(0, s) for s in old.shape)] = old
    if io_dims is not None:
        o, i = io_dims
        index = [slice(None)] * out.dim()
        index[o], index[i] = slice(0, old.shape[o]), slice(old.shape[i], None)
        out[tuple(index)] = 0
    return out


def widen_state(trained: GAACNN, wide: GAACNN) -> dict[str, Tensor]:
    """The wider model's state dict holding the trained model's function (see the module docstring)."""
    if (trained.preset.latent, trained.preset.hyper) != (wide.preset.latent, wide.preset.hyper):
        raise GaacnnError("widening keeps the latent and hyper-latent sizes (M, N2): the entropy models carry over")
    old = trained.state_dict()
    dims = {f"{name}.weight": io for name, m in wide.named_modules() if (io := _io_dims(m))}
    state = {}
    for key, fresh in wide.state_dict().items():
        if key not in old:
            raise GaacnnError(f"{key} has no counterpart in the trained model: the presets differ in more than width")
        table = key.rsplit(".", 1)[-1] in CODING_TABLES  # sized by update(), not by the widths
        state[key] = old[key].clone() if table or not fresh.dim() else widened_tensor(old[key], fresh, dims.get(key))
    return state


def widen(trained: GAACNN, preset: Preset | str, seed: int = 0) -> GAACNN:
    """A model of ``preset`` (wider transforms, same topology) that computes what ``trained`` does."""
    torch.manual_seed(seed)
    wide = GAACNN(preset_named(preset), context=trained.context)
    wide.load_state_dict(widen_state(trained, wide))
    return wide


def widen_checkpoint(source: Path | str, preset: Preset | str, target: Path | str, seed: int = 0) -> Path:
    """A training checkpoint (a trunk's) widened to ``preset``: the weights as ``widen`` makes them and
    Adam's moments with zeros for the new entries, so a cooldown can continue from it
    (``TrainConfig(init=target, init_optimizer=True)``); its history is the source's."""
    state = torch.load(source, map_location="cpu", weights_only=False)
    if state.get("config", {}).get("arch", "gaacnn") != "gaacnn":
        raise GaacnnError(f"{source} is not a GAACNN checkpoint")
    trained = GAACNN(preset_named(state["config"]["preset"]), context=state["config"].get("context", True))
    trained.load_state_dict(state["model"])
    wide = widen(trained, preset, seed)
    from .train import main_parameters  # the optimizer's parameter order (train imports this module)

    opt = state["opt"]
    for index, param in zip(opt["param_groups"][0]["params"], main_parameters(wide)):
        moments = opt["state"].get(index)
        for k in ("exp_avg", "exp_avg_sq") if moments else ():
            moments[k] = widened_tensor(moments[k], torch.zeros_like(param, dtype=moments[k].dtype))
    state["model"] = wide.state_dict()
    state["config"] = {**state["config"], "preset": preset_named(preset).name}
    torch.save(state, target)
    return Path(target)
