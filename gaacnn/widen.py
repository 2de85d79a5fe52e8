"""Function-preserving widening of a trained GAACNN (Net2Net, Chen et al., ICLR 2016, "Net2WiderNet"
with zero-initialised fan-out instead of replicated units).

Why: the ``small`` preset's transforms cap its top rate near 29.4 dB on Kodak however long it trains
(docs/training-log.md, fourth session), and training a wider preset from scratch would throw away the
CPU-hours its trunk holds. Widening channels so that the wider model computes exactly what the trained
one did lets the extra channels start from the trunk's quality:

- a layer's new *output* channels get the wider model's fresh initialisation (they compute something);
- every old output's weights from a new *input* channel are zero (so nothing old sees them yet);
- GDN's gamma, initialised diagonal, already keeps old and new channels apart.

Training then moves the zero weights (their gradients are the new channels' activations times the old
outputs' gradients), and the new channels join in. The inner widths of g_a / g_s may grow (``MEDIUM``),
and so may the latent y itself (M, ``SMALL_M96``, as the paper's high-rate model widens its low-rate
one): then h_a and h_s, whose widths are M, grow with it, h_s's 2M entropy parameters keep each old
channel's pair in place, and the layers whose outputs a GAT builds its similarity graph from start their
new channels at zero, so the graph is unchanged. The old channels then cost exactly the bits they did;
the new ones start at whatever their fresh parameters give (on the trunk at step 34,723, 0.51 bpp more on
kodim01), which the rate term then trains down or puts to use. The context model and the mixture's
parameter net are shared across channels and carry over; z (N2) keeps its size.
Where this sits: x -> [g_a] -> y -> [h_a] -> z -> bits -> [h_s] -> entropy parameters -> bits -> [g_s].
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor, nn
from torch_geometric.nn import DenseGATConv
from torch_geometric.nn.dense.linear import Linear as PygLinear

from .errors import GaacnnError
from .model import GAACNN
from .presets import Preset, get_preset
from .transforms import HyperAnalysis, HyperSynthesis

# small with g_a's H/2 and g_s's H/8-H/2 stages as wide as the control's (64 channels; 3.05 M parameters,
# 1.8-1.9x small's CPU step, benchmarks/results/train_throughput_cpu_medium.txt). Measured: widened from the
# trunk and cooled down 1,500 steps at lambda 0.1, it codes where small does (+0.01 dB on Kodak,
# benchmarks/results/widen_top_gaacnn.txt); grown beside small at constant lr for the same two CPU-hours, it ends
# where small does (ahead per step, 1.8x the step; benchmarks/results/widen_stretch_gaacnn.txt). It lives here,
# not in presets.PRESETS, because that module's source is part of every cached model row's code hash
# (evaluate.MODEL_CODE): an experiment must not send every shipped model's evaluation back to be measured.
MEDIUM = Preset("medium", 16, 64, 40, 32, 1, 2, 2, 11, 12, (24, 48), 1, synthesis_outputs=(64, 64, 64))
# small with the control's latent width, M = 96 (everything from H/4 down in g_a, h_a and h_s grows with
# it; g_s's first stage reads 96 channels and keeps its 40 outputs). Why: PCA of Kodak's 16 x 16 x 3
# blocks to 40 components gives 27.0 dB, to 96 31.0 dB, and small's transforms top out 2.5 dB above the
# first; trained side by side, M = 96 pulls ahead after ~1,000 steps (benchmarks/results/latent_width_gaacnn.txt),
# though not in a cooldown straight after widening (latent_width_tops_gaacnn.txt): trunks.TRUNKS grows it first.
SMALL_M96 = replace(get_preset("small"), name="small-m96", latent=96)
# M = 64: a latent wide enough and a trunk small enough to carry. Parameters grow about as M squared
# (3.67 M here, 4.44 M at 72, 7.22 M at 96): the trunk's compact copy is 30 MB (58 MB at 96, over the 40 MB
# a change may add to the history) and a shipped int8 file 3.95 MB, so both of its ladders fit the tree in
# place of small's (benchmarks/results/latent_width_sizes.txt). Side by side, M = 64 and 72 both climbed
# past M = 96's 75-minute mark, 64 within 0.1-0.5 dB of 72 at equal steps
# (benchmarks/results/latent_width_m64_m72_gaacnn.txt).
SMALL_M64 = replace(get_preset("small"), name="small-m64", latent=64)
WIDER = {p.name: p for p in (MEDIUM, SMALL_M64, SMALL_M96)}


def preset_named(name: str | Preset) -> Preset:
    """A preset of presets.PRESETS or one of the widened ones here, by name."""
    if isinstance(name, Preset):
        return name
    return WIDER[name] if name in WIDER else get_preset(name)


# The entropy models' coding tables (CompressAI buffers), the same whatever the transforms' widths.
CODING_TABLES = ("_offset", "_quantized_cdf", "_cdf_length")


def _io_dims(module: nn.Module) -> tuple[int, int] | None:
    """(output dim, input dim) of a convolution's or a linear layer's weight; None for anything else."""
    if isinstance(module, nn.ConvTranspose2d):
        return 1, 0
    if isinstance(module, (nn.Conv2d, nn.Linear, PygLinear)):
        return 0, 1
    return None


def _positions(old: int, new: int, groups: int = 1) -> Tensor:
    """Where the ``old`` entries of a dimension go among ``new``: the leading block, or the leading part
    of each of ``groups`` equal blocks (h_s's last conv: its 2M outputs are two blocks of M)."""
    if old % groups or new % groups:
        raise GaacnnError(f"{old} -> {new} entries do not split into {groups} equal blocks")
    a, b = old // groups, new // groups
    return torch.cat([torch.arange(j * b, j * b + a) for j in range(groups)])


def widened_tensor(old: Tensor, fresh: Tensor, io_dims: tuple[int, int] | None = None,
                   groups: dict[int, int] | None = None, zero_new: bool = False) -> Tensor:
    """``fresh`` (the wider model's initial value) with ``old`` in its leading block (per ``groups``, in
    the leading part of each block of a dimension); for a layer's weight (``io_dims`` given) the old
    outputs' weights from new inputs set to zero; with ``zero_new`` every new entry zero."""
    if old.dim() != fresh.dim() or any(o > f for o, f in zip(old.shape, fresh.shape)):
        raise GaacnnError(f"cannot widen a tensor of shape {tuple(old.shape)} into {tuple(fresh.shape)}")
    where = [_positions(o, f, (groups or {}).get(d, 1)) for d, (o, f) in enumerate(zip(old.shape, fresh.shape))]
    out = torch.zeros_like(fresh) if zero_new else fresh.detach().clone()
    if io_dims is not None:
        o, i = io_dims
        new_inputs = torch.ones(fresh.shape[i], dtype=torch.bool)
        new_inputs[where[i]] = False
        index = [slice(None)] * out.dim()
        index[i] = new_inputs
        rows = out[tuple(index)]  # a copy: old rows of it zeroed, then written back
        rows.index_fill_(o, where[o], 0)
        out[tuple(index)] = rows
    out[torch.meshgrid(*where, indexing="ij")] = old
    return out


def _layouts(wide: nn.Module) -> dict[str, dict]:
    """How each tensor of ``wide`` widens, by state-dict key: ``widened_tensor``'s keyword arguments."""
    out: dict[str, dict] = {}
    for name, m in wide.named_modules():
        prefix = f"{name}." if name else ""
        if io := _io_dims(m):
            out.setdefault(f"{prefix}weight", {})["io_dims"] = io
        if isinstance(m, DenseGATConv):  # a new channel's attention vector entry 0: old logits unchanged
            for key in (f"{prefix}att_src", f"{prefix}att_dst"):
                out.setdefault(key, {})["zero_new"] = True
        if isinstance(m, HyperSynthesis):  # (2, M) entropy parameters per position, read as hyper.view(2, M)
            last = f"{prefix}params.{len(m.params) - 1}."
            out.setdefault(f"{last}weight", {})["groups"] = {0: 2}
            out.setdefault(f"{last}bias", {})["groups"] = {0: 2}
        for layer in _graph_inputs(m):
            for key, _ in layer.named_parameters(prefix=f"{prefix}{_relative(m, layer)}".rstrip(".")):
                out.setdefault(key, {})["zero_new"] = True
    return out


def _graph_inputs(module: nn.Module) -> list[nn.Module]:
    """The layers whose outputs make up the features a GAT branch builds its similarity graph from
    (graph.similarity_adjacency: <f_i, f_j> > 0 over all channels). Their new channels start at zero,
    so the graph, and with it every old channel's entropy parameters, stays what it was."""
    if isinstance(module, HyperAnalysis):  # h = down1(acnn1(y))
        return [module.down1[0]]
    if isinstance(module, HyperSynthesis):  # u = acnn1(up1(t0)): ACNN's output is its input plus its blocks'
        return [module.up1[0], *(c for b in module.acnn1.blocks for c in (b.square, b.vertical, b.horizontal))]
    return []


def _relative(parent: nn.Module, child: nn.Module) -> str:
    """``child``'s name inside ``parent``, with a trailing dot."""
    return next(f"{name}." for name, m in parent.named_modules() if m is child)


def widen_state(trained: GAACNN, wide: GAACNN) -> dict[str, Tensor]:
    """The wider model's state dict holding the trained model's function (see the module docstring)."""
    if trained.preset.hyper != wide.preset.hyper:
        raise GaacnnError("widening keeps the hyper-latent's size (N2): the factorized prior carries over")
    return widened_module_state(trained, wide)


def widened_module_state(trained: nn.Module, wide: nn.Module) -> dict[str, Tensor]:
    """``wide``'s state dict with every tensor of ``trained`` widened into it (``widened_tensor``):
    any module whose layers only grow in channels, a whole model or one transform."""
    old = trained.state_dict()
    layouts = _layouts(wide)
    state = {}
    for key, fresh in wide.state_dict().items():
        if key not in old:
            raise GaacnnError(f"{key} has no counterpart in the trained model: the presets differ in more than width")
        table = key.rsplit(".", 1)[-1] in CODING_TABLES  # sized by update(), not by the widths
        state[key] = old[key].clone() if table or not fresh.dim() else widened_tensor(
            old[key], fresh, **layouts.get(key, {}))
    return state


def widen(trained: GAACNN, preset: Preset | str, seed: int = 0) -> GAACNN:
    """A model of ``preset`` (wider transforms, same topology) that computes what ``trained`` does."""
    torch.manual_seed(seed)
    wide = GAACNN(preset_named(preset), context=trained.context)
    wide.load_state_dict(widen_state(trained, wide))
    return wide


def widen_checkpoint(source: Path | str, preset: Preset | str, target: Path | str, seed: int = 0) -> Path:
    """A training checkpoint (a trunk's) widened to ``preset``: the weights as ``widen`` makes them and
    Adam's moments widened too (first moments 0, second moments their tensor's mean), so a cooldown can
    continue from it
    (``TrainConfig(init=target, init_optimizer=True)``); its history is the source's."""
    state = torch.load(source, map_location="cpu", weights_only=False)
    if state.get("config", {}).get("arch", "gaacnn") != "gaacnn":
        raise GaacnnError(f"{source} is not a GAACNN checkpoint")
    trained = GAACNN(preset_named(state["config"]["preset"]), context=state["config"].get("context", True))
    trained.load_state_dict(state["model"])
    wide = widen(trained, preset, seed)
    from .train import main_parameters  # the optimizer's parameter order (train imports this module)

    opt, layouts = state["opt"], _layouts(wide)
    main = main_parameters(wide)
    names = [n for n, p in wide.named_parameters() if any(p is q for q in main)]
    for index, name, param in zip(opt["param_groups"][0]["params"], names, main):
        moments = opt["state"].get(index)
        for k in ("exp_avg", "exp_avg_sq") if moments else ():
            old = moments[k]
            # The second moment of a new entry starts at its tensor's mean: zero would make its first
            # steps about 3x lr (m / sqrt(v) = 0.1 g / sqrt(0.001 g^2), the trunk's step count having
            # worn off Adam's bias correction) for every new weight at once, and the cooldown then
            # starts by falling 5-8 dB (measured on the trunk widened to small-m96).
            fill = float(old.float().mean()) if k == "exp_avg_sq" and old.numel() else 0.0
            moments[k] = widened_tensor(old, torch.full_like(param, fill, dtype=old.dtype),
                                        groups=layouts.get(name, {}).get("groups"))
    state["model"] = wide.state_dict()
    state["config"] = {**state["config"], "preset": preset_named(preset).name}
    torch.save(state, target)
    return Path(target)
