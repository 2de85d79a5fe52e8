"""Profiles: what ``make train`` trains and what ``make paper-figures`` evaluates.

Training (``make train PROFILE=...``):

- ``quick``: the shipped families, on a CPU, resumable wherever they stand (``gaacnn.trunks.quick``):
  one MSE trunk per architecture (GAACNN small and the size-matched control) that grows at a constant
  learning rate, then one short cooldown per shipped lambda (MSE and MS-SSIM), then shipping.
- ``trunk``: only grow the trunks by ``MINUTES`` and store them for git (``gaacnn.trunks``).
- ``paper``: the authors' presets, lambdas and schedule (GPU, bf16, batch 16, 256x256; ``paper_jobs``).

Figures (``make paper-figures PROFILE=...``): ``default`` (shipped weights, all of Kodak, the
high-resolution sets, every codec), ``smoke`` (random-weight tiny models, two Kodak crops), ``paper``
(as default, on every high-resolution image).

The shipped small models before the trunks came from chains of fine-tunes and 3,000-step rounds
that each restarted Adam and the learning-rate schedule; docs/training-log.md tells that history,
and issue 20 the measurements that replaced it.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from .loss import paper_lambda
from .train import TrainConfig, train

PAPER_MSE = (8, 12, 16, 24, 32, 64, 128, 256, 512, 1024, 2048)
PAPER_MSSSIM = (1.8, 3.6, 7.2, 14.4, 28.8)


def paper_jobs() -> list[TrainConfig]:
    jobs = []
    for lm in PAPER_MSE:
        preset = "paper-low" if lm <= 128 else "paper-high"
        jobs.append(TrainConfig(arch="gaacnn", preset=preset, metric="mse", lmbda=paper_lambda(lm, "mse"),
                                steps=700_000, batch=16, patch=256, milestones=(250 / 700, 650 / 700),
                                lr=1e-4, clip=2.0, warmup=0, decay=0.0, device="auto", val_every=5000, ckpt_every=2000,
                                out=f"runs/paper/gaacnn-{preset}-mse-{lm}"))
    # MS-SSIM models start from an MSE model (the authors train their first epoch on MSE): the paper-low
    # MSE run of the same rank in its lambda list (1.8 -> 8, 3.6 -> 12, 7.2 -> 16, 14.4 -> 24, 28.8 -> 32).
    for lm, start in zip(PAPER_MSSSIM, PAPER_MSE):
        jobs.append(TrainConfig(arch="gaacnn", preset="paper-low", metric="ms-ssim",
                                init=f"runs/paper/gaacnn-paper-low-mse-{start}/checkpoint.pt",
                                lmbda=paper_lambda(lm, "ms-ssim"), steps=700_000, batch=16, patch=256,
                                milestones=(250 / 700, 650 / 700), lr=1e-4, clip=2.0, warmup=0, decay=0.0,
                                device="auto", val_every=5000,
                                ckpt_every=2000, out=f"runs/paper/gaacnn-paper-low-ms-ssim-{lm}"))
    return jobs


@dataclass(frozen=True)
class FigureProfile:
    name: str
    kodak_images: int | None  # None: all 24
    highres_images: int | None
    codec_points: int | None  # qualities per codec (None: the whole sweep)
    models: str  # "manifest" (shipped weights) or "random-tiny"
    crop: int | None = None  # centre crop of every image (smoke only)


FIGURE_PROFILES = {
    # CLIC 2025 images are 2-3 Mpixel: 20 models and 6 codec sweeps on all 10 take about 1.5 CPU-hours
    # here, so the default profile uses the first 4 (said in every title); "paper" uses all.
    "default": FigureProfile("default", None, 4, None, "manifest"),
    "smoke": FigureProfile("smoke", 2, 1, 4, "random-tiny", crop=256),
    "paper": FigureProfile("paper", None, None, None, "manifest"),
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m gaacnn.profiles")
    ap.add_argument("command", choices=["train", "list"])
    ap.add_argument("--profile", default="quick", choices=["quick", "paper", "default"])
    ap.add_argument("--minutes", type=float, default=0.0, help="quick: grow each trunk this long first")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    if args.profile == "paper":
        for job in paper_jobs():
            if args.command == "list":
                print(job.out, job.metric, job.lmbda, job.steps)
            else:
                train(job, resume=True)
        return
    from . import trunks

    if args.command == "list":
        for name, (trunk, metric, lmbda) in trunks.ladder_names().items():
            print(name, "<-", trunk, metric, lmbda)
        return
    for entry in trunks.quick(args.minutes, args.threads):
        print(f"shipped {entry['name']}: {entry['steps']} steps, {entry.get('cpu_hours', 0):.2f} CPU-hours")


if __name__ == "__main__":
    main()
