"""Helpers for the teaching notebooks (01-03): costs of the blocks, intermediate maps, the graph,
and where the bits go. Each function reads a model; none changes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from .acnn import ACNN, ACBlock
from .attention import AttentionModule


def conv_cost(module: nn.Module, h: int, w: int) -> dict[str, int]:
    """Parameters and multiply-accumulates of the convolutions in ``module`` on an h x w map (stride 1)."""
    params = sum(p.numel() for p in module.parameters())
    macs = sum(m.weight.numel() * h * w for m in module.modules() if isinstance(m, nn.Conv2d))
    return {"params": params, "MACs": macs}


def acnn_costs(ch: int = 64, h: int = 128, w: int = 128) -> dict[str, dict[str, int]]:
    """ACBlock vs a plain 3x3 conv, and an ACNN module vs three plain 3x3 convs (Fig. 2)."""
    return {
        "conv3x3": conv_cost(nn.Conv2d(ch, ch, 3, padding=1), h, w),
        "ACBlock (3x3 + 3x1 + 1x3)": conv_cost(ACBlock(ch), h, w),
        "3 x conv3x3": conv_cost(nn.Sequential(*[nn.Conv2d(ch, ch, 3, padding=1) for _ in range(3)]), h, w),
        "ACNN (3 ACBlocks)": conv_cost(ACNN(ch, 3), h, w),
    }


def receptive_field(module: nn.Module, size: int = 33) -> Tensor:
    """Which input pixels reach the centre output (|gradient| map), for a 1-channel probe."""
    ch = next(m for m in module.modules() if isinstance(m, nn.Conv2d)).in_channels
    x = torch.zeros(1, ch, size, size, requires_grad=True)
    out = module(x)
    out[0, :, size // 2, size // 2].sum().backward()
    return x.grad[0].abs().sum(0)


def collect(model: nn.Module, x: Tensor, kinds: tuple[type, ...]) -> dict[str, Tensor]:
    """Outputs of every submodule of the given kinds during one forward pass (name -> tensor)."""
    found: dict[str, Tensor] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, o, n=n: found.__setitem__(n, o.detach()))
             for n, m in model.named_modules() if isinstance(m, kinds)]
    _forward_with_hooks(model, x, hooks)
    return found


def _forward_with_hooks(model: nn.Module, x: Tensor, hooks: list) -> None:
    """One no-grad forward pass, then remove the hooks it fed."""
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()


def acnn_feature_maps(model: nn.Module, x: Tensor) -> dict[str, Tensor]:
    return collect(model, x, (ACNN,))


def attention_maps(model: nn.Module, x: Tensor) -> dict[str, dict[str, Tensor]]:
    """Per attention module: the positional gate a_h * a_w (mean over channels) and channel gates."""
    maps: dict[str, dict[str, Tensor]] = {}
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, AttentionModule):
            def pos_hook(mod, inp, out, n=name):
                maps.setdefault(n, {})["position"] = mod.gate(inp[0]).mean(1)[0].detach()

            hooks.append(m.position.register_forward_hook(pos_hook))
            ca = m.channel.body[0].body[-1]  # first RCAB's channel attention
            hooks.append(ca.gate.register_forward_hook(
                lambda mod, inp, out, n=name: maps.setdefault(n, {}).__setitem__("channel", out.flatten().detach())))
            maps.setdefault(name, {})["beta"] = m.beta.detach().clone()
            maps[name]["gamma"] = m.gamma.detach().clone()
    _forward_with_hooks(model, x, hooks)
    return maps


def graph_summary(model, x: Tensor) -> dict:
    """The similarity graph of h_a's GAT for one image: nodes, edges, degrees, attention (first layer)."""
    with torch.no_grad():
        y = model.g_a(x)
        h = model.h_a.down1(model.h_a.acnn1(y))
        weights, adj = model.h_a.gat.attention_weights(h)
    deg = adj[0].sum(1)
    n = adj.shape[-1]
    return {"nodes": n, "edges": int(adj[0].sum().item() - n) // 2, "degree": deg, "grid": tuple(h.shape[-2:]),
            "attention": weights[0], "adjacency": adj[0]}


def sparser_graphs(nodes: Tensor, keep: tuple[float, ...] = (1.0, 0.5, 0.2, 0.05)) -> dict[float, Tensor]:
    """Node degrees of sparser alternatives to the similarity graph of ``nodes`` (N, C): for each fraction
    ``k`` in ``keep``, every node keeps its k*N most cosine-similar neighbours (itself included); k = 1.0 is
    the complete graph that "dot product > 0" gives when features are (almost) all non-negative."""
    f = torch.nn.functional.normalize(nodes, dim=1)
    sim = f @ f.t()
    n = sim.shape[0]
    out = {}
    for k in keep:
        top = max(1, int(round(k * n)))
        idx = sim.topk(top, dim=1).indices
        adj = torch.zeros_like(sim).scatter_(1, idx, 1.0)
        adj = ((adj + adj.t()) > 0).float()  # an edge either end chose
        out[k] = adj.sum(1)
    return out


@contextmanager
def _test_time(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode (rounding as at test time) and no autograd inside the block; the model's mode after."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was)


@contextmanager
def _caught_latent(model: nn.Module) -> Iterator[list[Tensor]]:
    """A list that receives y, the output of g_a, on its way through the forward passes run inside."""
    latents: list[Tensor] = []
    hook = model.g_a.register_forward_hook(lambda _m, _i, y: latents.append(y))
    try:
        yield latents
    finally:
        hook.remove()


def _test_time_likelihoods(model, x: Tensor) -> dict[str, Tensor]:
    """The likelihoods of one forward pass at test time."""
    with _test_time(model):
        return model(x)["likelihoods"]


def bit_allocation(model, x: Tensor) -> dict:
    """Estimated bits per latent position (sum over channels of -log2 likelihood, rounding as at test time)
    next to the real coded size of the same image."""
    from .codec import encode

    out = _test_time_likelihoods(model, x)
    y_bits = -torch.log2(out["y"][0]).sum(0)
    z_bits = -torch.log2(out["z"]).sum()
    data = encode(model, x)
    return {"y_bits_map": y_bits, "estimated_bits": float(y_bits.sum() + z_bits), "real_bits": 8 * len(data)}


def latent_channels(model, x: Tensor) -> dict[str, Tensor]:
    """The rounded latent y_hat (C, h, w) of one image, the bits each element costs (C, h, w, from the
    test-time likelihoods) and the channels ordered by their total bits, most first: what the latent
    slider of notebook 03 shows (a few channels carry most of the rate; many cost nearly nothing)."""
    with _caught_latent(model) as latents:
        out = _test_time_likelihoods(model, x)
    bits = -torch.log2(out["y"][0])
    return {"y_hat": torch.round(latents[0][0]).detach(), "bits": bits.detach(),
            "order": torch.argsort(bits.sum((1, 2)), descending=True)}


def quantization_gap(model, x: Tensor) -> dict[str, float]:
    """Where the quality of a trained model goes: PSNR (dB) of x against g_s(g_a(x)) with y unrounded
    (the transforms alone, no bits spent), against the decoder's output from the rounded y (what the
    codec decodes), and their difference.

    A small gap at the top of an RD curve says more bits would buy little quality: the transforms,
    not the rate, limit it, and a larger lambda cannot move the point to a higher rate (the top of the
    RD curves, Fig. 4). x: (1, 3, H, W) in [0, 1], any size (padded inside as the codec pads it)."""
    from compressai.ops import compute_padding

    from .codec import PAD_MULTIPLE
    from .loss import psnr

    h, w = x.shape[-2:]
    pad, unpad = compute_padding(h, w, min_div=PAD_MULTIPLE)
    x_pad = nn.functional.pad(x, pad, mode="replicate")
    with _caught_latent(model) as latents, _test_time(model):  # g_a runs once
        coded = nn.functional.pad(model(x_pad)["x_hat"], unpad).clamp(0, 1)
        smooth = nn.functional.pad(model.g_s(latents[0]), unpad).clamp(0, 1)
    unrounded = psnr(float(((smooth - x) ** 2).mean()))
    rounded = psnr(float(((coded - x) ** 2).mean()))
    return {"psnr_unrounded": unrounded, "psnr_rounded": rounded, "gap_db": unrounded - rounded}


def bits_by_border_distance(bits_map: Tensor) -> Tensor:
    """Mean of a (H, W) per-position bit map (``bit_allocation``'s ``y_bits_map``) at each distance
    from the nearest edge of the latent, 0 (the edge) up to the centre.

    A check on the training patch size: a model trained only on small patches never sees a latent
    far from an edge (a 128-px patch has an 8x8 latent: distance at most 3), and can learn a rate
    that holds only near edges; on a large image its interior then costs several times more."""
    h, w = bits_map.shape
    rows = torch.arange(h)
    cols = torch.arange(w)
    dist = torch.minimum(torch.minimum(rows, h - 1 - rows)[:, None], torch.minimum(cols, w - 1 - cols)[None, :])
    return torch.stack([bits_map[dist == d].mean() for d in range(int(dist.max()) + 1)])


def main(argv: list[str] | None = None) -> None:
    """``python -m gaacnn.diagnostics border-rate WEIGHTS...``: each model's bits per latent position by
    distance from the edge, on one Kodak image (mean of each ring, rounding as at test time).
    ``python -m gaacnn.diagnostics quantization-gap WEIGHTS... --images 24``: ``quantization_gap`` per
    model, mean over the first Kodak images."""
    import argparse

    from tqdm.auto import tqdm

    from . import manifest
    from .figures import load_kodak_tensor

    ap = argparse.ArgumentParser(prog="python -m gaacnn.diagnostics")
    ap.add_argument("command", choices=["border-rate", "quantization-gap"])
    ap.add_argument("weights", nargs="+", help="manifest names or weights files")
    ap.add_argument("--kodak", type=int, default=0, help="Kodak image index (0: kodim01)")
    ap.add_argument("--images", type=int, default=24, help="quantization-gap: first N Kodak images")
    args = ap.parse_args(argv)
    if args.command == "quantization-gap":
        images = [load_kodak_tensor(i) for i in range(args.images)]
        header = f"{'model':32s} {'PSNR g_s(y)':>12s} {'PSNR g_s(round y)':>18s} {'gap dB':>7s}"
        print(f"{header}  (Kodak, {len(images)} images)")
        for name in args.weights:
            model = manifest.load(name)
            rows = [quantization_gap(model, x) for x in tqdm(images, desc=name, leave=False)]
            mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
            print(f"{name:32s} {mean['psnr_unrounded']:12.2f} {mean['psnr_rounded']:18.2f} {mean['gap_db']:7.2f}")
        return
    x = load_kodak_tensor(args.kodak)
    for name in args.weights:
        bits = -torch.log2(_test_time_likelihoods(manifest.load(name), x)["y"][0]).sum(0)
        profile = bits_by_border_distance(bits)
        print(f"{name}: " + " ".join(f"{v:.0f}" for v in profile.tolist()))


if __name__ == "__main__":
    main()
