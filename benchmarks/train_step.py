"""Where a GAACNN small training step spends its time on this CPU, and what cuts it (issue 20, item 6).

One step = forward, rate-distortion loss, backward, clipping, Adam, the aux step: the loop of
``gaacnn.train``, on a fixed random batch (batch 8 x 128 px unless said), one thread. Variants are
measured side by side, interleaved round by round so that a neighbour's load hits them all alike,
and printed as steps/s with the ratio against the baseline (the three-branch ACBlock of Fig. 2 and
contiguous tensors) and against the control (CompressAI's MeanScaleHyperprior N=64, M=96):

    OMP_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296 \\
        python benchmarks/train_step.py [--steps 6] [--rounds 3] [--profile]

``--profile`` adds torch.profiler's top operations (self CPU time) of one baseline step.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Iterator

import torch

from gaacnn.acnn import ACBlock
from gaacnn.loss import rate_distortion
from gaacnn.registry import build_model
from gaacnn.train import main_parameters


@contextlib.contextmanager
def three_branch_blocks() -> Iterator[None]:
    """Run every ACBlock as the literal sum of three convolutions (the code before this benchmark)."""
    fused = ACBlock.forward
    ACBlock.forward = ACBlock.branches
    try:
        yield
    finally:
        ACBlock.forward = fused


def step_fn(spec: dict, batch: int, patch: int, channels_last: bool) -> Callable[[], None]:
    """One training step of ``gaacnn.train``'s loop on a fixed batch, as a closure."""
    torch.manual_seed(0)
    model = build_model(**spec).train()
    x = torch.rand(batch, 3, patch, patch)
    if channels_last:
        for p in model.parameters():  # the 3-D context kernel stays as it is
            if p.dim() == 4:
                p.data = p.data.contiguous(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    main = main_parameters(model)
    opt = torch.optim.Adam(main, 3e-4)
    aux_opt = torch.optim.Adam([p for n, p in model.named_parameters() if n.endswith(".quantiles")], 1e-3)

    def step() -> None:
        loss = rate_distortion(model(x), x, 0.013)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(main, 1.0)
        opt.step()
        aux = model.aux_loss()
        aux_opt.zero_grad(set_to_none=True)
        aux.backward()
        aux_opt.step()

    return step


VARIANTS: dict[str, tuple[dict, bool, bool]] = {
    # name: (model, three-branch ACBlocks, channels_last)
    "GAACNN small, three-branch ACBlocks (baseline)": (dict(arch="gaacnn", preset="small"), True, False),
    "GAACNN small, folded ACBlocks": (dict(arch="gaacnn", preset="small"), False, False),
    "GAACNN small, folded, channels_last": (dict(arch="gaacnn", preset="small"), False, True),
    "control MSHP N=64 M=96": (dict(arch="mshp", N=64, M=96), False, False),
}


def timed(step: Callable[[], None], branches: bool, steps: int) -> list[float]:
    with three_branch_blocks() if branches else contextlib.nullcontext():
        out = []
        for _ in range(steps):
            t0 = time.perf_counter()
            step()
            out.append(time.perf_counter() - t0)
    return out


def profile(step: Callable[[], None], rows: int = 15) -> str:
    with three_branch_blocks():
        step()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=6, help="timed steps per variant and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {args.batch} x {args.patch} px")
    steps = {name: step_fn(spec, args.batch, args.patch, cl) for name, (spec, _, cl) in VARIANTS.items()}
    for name, step in steps.items():  # warm-up: allocator, first-call costs
        timed(step, VARIANTS[name][1], 2)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            times[name] += timed(step, VARIANTS[name][1], args.steps)
    median = {name: sorted(t)[len(t) // 2] for name, t in times.items()}
    base = median[next(iter(VARIANTS))]
    control = median["control MSHP N=64 M=96"]
    print(f"{'variant':48s} {'s/step':>7s} {'steps/s':>8s} {'x baseline':>10s} {'x control':>10s}")
    for name, s in median.items():
        print(f"{name:48s} {s:7.3f} {1 / s:8.2f} {base / s:10.2f} {control / s:10.3f}")
    if args.profile:
        print("\nTop operations of one baseline step (self CPU time):")
        print(profile(steps[next(iter(VARIANTS))]))


if __name__ == "__main__":
    main()
