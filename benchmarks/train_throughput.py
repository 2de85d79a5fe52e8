"""Training throughput of the paper presets against CompressAI's MeanScaleHyperprior at the authors'
size (N=128, M=192), measured side by side: steps/s and peak GPU memory at batch 8 and 16 on 256x256.
Prints ratios against the control (the last model named). Meant for a GPU (bf16 autocast, as in training); on CPU use
--batches 1 --patch 128 for a quick look.

    python benchmarks/train_throughput.py [--steps 10] [--batches 8 16] [--patch 256]

What a wider latent would cost the quick profile (its top lambdas sit near the small preset's
ceiling, README "Why the top lambdas stop short of 1 bpp"), on a CPU, one thread, as its rounds train:

    OMP_NUM_THREADS=1 python benchmarks/train_throughput.py --batches 2 --steps 4 --models "small, M=64" small
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from gaacnn.loss import rate_distortion
from gaacnn.presets import PRESETS
from gaacnn.registry import build_model
from gaacnn.transforms import count_parameters
from gaacnn.widen import MEDIUM

MODELS = {
    "paper-low (M=192)": dict(arch="gaacnn", preset="paper-low"),
    "paper-high (M=320)": dict(arch="gaacnn", preset="paper-high"),
    "mshp N=128 M=192 (CompressAI)": dict(arch="mshp", N=128, M=192),
    # the quick profile's pair (not run by default): --models small "mshp N=64 M=96"
    "small": dict(arch="gaacnn", preset="small"),
    "mshp N=64 M=96": dict(arch="mshp", N=64, M=96),
    # small with the latent (and so everything from H/4 down) widened, as paper-high widens paper-low
    "small, M=64": dict(arch="gaacnn", preset=replace(PRESETS["small"], name="small-m64", latent=64)),
    # small with every width doubled (C0 32, N1 64, M 80, N2 64): what lifting its transforms' 29.2 dB cap
    # would cost (benchmarks/results/latent_gain_top_gaacnn.txt)
    "small x2": dict(arch="gaacnn", preset=replace(PRESETS["small"], name="small-x2", stem=32, width=64, latent=80,
                                                   hyper=64, synthesis_outputs=(80, 64, 64))),
    # small widened where the control is wider (H/2-H/8 at 64 channels; gaacnn.widen grows a trained small
    # into it), and the control at about its size
    "medium": dict(arch="gaacnn", preset=MEDIUM),
    "mshp N=96 M=96": dict(arch="mshp", N=96, M=96),
}
DEFAULT = ["paper-low (M=192)", "paper-high (M=320)", "mshp N=128 M=192 (CompressAI)"]


def millions_of_parameters(spec: dict) -> float:
    """Parameter count in millions; twice it is the MB a half-precision shipped file weighs."""
    return count_parameters(build_model(**spec)) / 1e6


def measure(spec: dict, batch: int, patch: int, steps: int, device: torch.device) -> tuple[float, float]:
    torch.manual_seed(0)
    model = build_model(**spec).to(device).train()
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    x = torch.rand(batch, 3, patch, patch, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(steps + 2):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = model(x)
        loss = rate_distortion(out, x, 0.013)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:  # warm-up steps are not counted
            times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return 1.0 / (sum(times) / len(times)), peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batches", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--patch", type=int, default=256)
    ap.add_argument("--models", nargs="+", default=DEFAULT, choices=list(MODELS))
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"device: {name}, patch {args.patch}, {args.steps} timed steps after 2 warm-up")
    for m in args.models:
        params = millions_of_parameters(MODELS[m])
        print(f"  {m:32s} {params:6.2f} M parameters, {2 * params:5.1f} MB in half precision")
    for batch in args.batches:
        rows = {m: measure(MODELS[m], batch, args.patch, args.steps, device) for m in args.models}
        base = rows[args.models[-1]]  # the last model named is the baseline (default: the control)
        print(f"batch {batch} (ratios against {args.models[-1]}):")
        for m, (sps, peak) in rows.items():
            print(f"  {m:32s} {sps:7.3f} steps/s  x{sps / base[0]:6.3f}   peak {peak:6.2f} GiB")


if __name__ == "__main__":
    main()
