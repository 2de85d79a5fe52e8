"""Profiles: what ``make train`` trains and what ``make paper-figures`` evaluates.

- ``quick`` (train): the small preset and the size-matched control on CPU, 128x128 patches, batch 8:
  a 2,000-step base at the highest MSE lambda, then per metric fine-tunes to the top lambda
  (GAACNN's MSE top 600 steps from the base, its MS-SSIM top 400 + 600 through 60.5); the top
  lambda per metric gets a 200-step stage on 256x256 patches, batch 2 (same pixels per step), and
  then rounds of more steps there (``TOP_ROUNDS``): 3,000 steps each on the CPU, one on a GPU
  (``-gpu``: batch 16, 2,710 steps or 8 minutes; on a CPU the 8-minute guard ends it after a few
  dozen steps). The other three lambdas per metric that ship refine down from the top's round
  ``REFINE_FROM`` (``refine_chain``), 600 steps each.
  The CPU budget counts, on two cores: about 65 min per CPU round for GAACNN small (the two tops side
  by side, a thread each), 20 min for the control; its refine chains about 40 min and 11 min; a
  quarter hour of one GPU for the four GPU rounds.
- ``gpu`` (train): the quick profile's two CPU bases fine-tuned on a GPU at four MSE lambdas (batch 16,
  256x256, 2,710 steps or 8 minutes): what a GPU lent for a quarter of an hour can add.
- ``paper`` (train): the authors' presets, lambdas and schedule (GPU, bf16, batch 16, 256x256).
- ``default`` (figures): shipped weights, all of Kodak, the high-resolution sets, every codec.
- ``smoke`` (figures): random-weight tiny models, two Kodak images, two qualities per codec.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, replace

from .loss import paper_lambda
from .train import TrainConfig, train

# CompressAI's lambdas q6 / q4 / q2, then further down: short CPU runs code at much higher rates than
# converged models (a 2,000-step control base: 1.27 bpp at lambda 0.0483, 400-step fine-tunes reached
# 0.41 bpp at 0.0009 and 0.20 at 0.0002). GAACNN small answers lambda more weakly in so few steps
# (0.26-0.55 bpp on Kodak from 0.0002 to 0.0483), so its chains go one step further at each end:
# down to QUICK_*_LOW, and up from the top of the chain to QUICK_*_HIGH (CompressAI's q8).
QUICK_MSE = (0.0002, 0.0009, 0.0035, 0.013, 0.0483)
QUICK_MSSSIM = (0.3, 1.2, 4.58, 16.64, 60.5)
QUICK_MSE_LOW, QUICK_MSE_HIGH = 0.00005, 0.18
QUICK_MSSSIM_LOW, QUICK_MSSSIM_HIGH = 0.075, 220
END_STEPS = 600  # fine-tune steps of the two end points (the others: ``finetune_steps``)
# The last stage of every shipped quick model. Trained on 128-px patches alone (an 8x8 latent), the
# models spent 2-5x more bits per latent position in the interior of a large image than within 3
# positions of an edge, the only positions such a patch has (``explain.bits_by_border_distance``);
# 200 steps on 256-px patches (patch x4 in area, batch / 4): a cheap cure, in the time this CPU had.
POLISH_PATCH, POLISH_BATCH, POLISH_STEPS = 256, 2, 200
# The top lambda of each family then trains on at 256 px, batch 2: short runs level off near 25-27 dB
# on Kodak and below 0.55 bpp at any lambda, so the top of the rate span needs more steps, not a
# larger lambda (GAACNN small MSE 0.0483 -> 0.18 moved Kodak from 0.333 to 0.356 bpp; from the shipped
# GPU-round top, 300 steps at 0.5 instead of 0.18 coded CID22 valid at 0.560 vs 0.559 bpp, and a higher
# lr, 3e-4 or 1e-3, lost 0.4 / 2.5 dB there). The steps
# come in rounds, each a run of its own from the one before, in the order of TOP_ROUNDS: a "cpu" round
# is LONG_STEPS at batch 2 (``<run>-long``, ``<run>-long2``, ...), sized so that a 3-hour CPU session
# finishes a GAACNN round (about 70 min); a "gpu" round has the GPU profile's batch and budget (``<run>-gpu``,
# ``<run>-gpu2``, ...). The last round is what ships for the top lambda. Two CPU rounds moved GAACNN's top
# points by about 0.075 bpp on Kodak; a quarter hour of GPU sees 7x the pixels of a CPU round (and
# moved them by another 0.06).
LONG_STEPS = 3000
TOP_ROUNDS = ("cpu", "cpu", "gpu", "cpu", "cpu", "cpu", "cpu", "cpu", "cpu")
# The first four rounds all drew their crops with the default seed 0, so each CPU round replayed the
# same 6,000 crops (item i of ``RandomCrops`` depends only on (seed, i)); from round RESEED_FROM on,
# round k (1-based) draws with seed k, new crops each round.
RESEED_FROM = 5
# The lower lambdas that ship, refined from the trained top: their own chains stop at a few thousand
# 128-px steps (CID22 valid: 20.8 dB at 0.31 bpp for the control at 0.0035) while the top lambda trains
# on for rounds (26.96 dB at 0.83 bpp after round 5), so each family's lower points fine-tune down
# from the top instead, one chain per metric from the top's round REFINE_FROM (fixed, so later top
# rounds leave them be), highest lambda first, REFINE_STEPS each at 256 px, batch 2; crops drawn
# with REFINE_SEED (no top round's). 600 steps took the control's 0.0035 to 26.31 dB at 0.548 bpp there
# (GAACNN's: 22.80 dB at 0.335 -> 26.57 at 0.391). 0 steps: the lower points ship from their own chains
# (-p256), as until 0982981; those chains have no 0.0005, so that way MSE ships three lambdas.
REFINE_FROM, REFINE_STEPS, REFINE_LR, REFINE_SEED = "-long5", 600, 1e-4, 50
# What ships (weights/ stays well under 100 MB with the GPU family beside it): four lambdas per
# family, spread over each family's rates from about 0.1 bpp on Kodak to its top, the same lambdas for
# GAACNN and the control below the top. Until the refine chains, the lowest were 5e-05 / 0.075 (GAACNN)
# and 0.0002 / 0.3 (control); refined, they coded Kodak at 0.008-0.034 bpp, below the span the
# issue asks for, so the ladder moved up (and MS-SSIM got 16.64 between 4.58 and the top).
QUICK_SHIP = {
    ("gaacnn", "mse"): (0.0005, 0.0009, 0.0035, QUICK_MSE_HIGH),
    ("gaacnn", "ms-ssim"): (1.2, 4.58, 16.64, QUICK_MSSSIM_HIGH),
    ("mshp", "mse"): (0.0005, 0.0009, 0.0035, 0.0483),
    ("mshp", "ms-ssim"): (1.2, 4.58, 16.64, 60.5),
}
# The GPU profile: fine-tunes of each quick base run at CompressAI's q2 / q4 / q5 / q6
# lambdas; a step budget with a wall-time guard, so a run also ends inside a lent GPU's quarter hour.
GPU_MSE = (0.0009, 0.0035, 0.013, 0.0483)
GPU_STEPS, GPU_MINUTES, GPU_BATCH = 2710, 8.0, 16
# What every GPU run sets: the GPU profile's fine-tunes and the quick profile's "gpu" rounds.
# The recipe every run shipped so far was trained with (1e-4, drops at 80/95 % of each run, clip 2.0,
# no warm-up); kept so that these runs still resume as they were. New work uses TrainConfig's defaults.
# Families of the quick profile that no longer ship: the control's MS-SSIM chain models (20-29 k steps of
# the old recipe) left so that the tracked tree fits under 60 MB (a GPU machine takes at most 64 MiB);
# the control's MS-SSIM ladder is to come back as cooldowns of its trunk.
RETIRED = ("control mshp ms-ssim",)
LEGACY_RECIPE = dict(lr=1e-4, clip=2.0, warmup=0, decay=0.0, milestones=(0.8, 0.95))
GPU_RUN = dict(steps=GPU_STEPS, batch=GPU_BATCH, device="auto", max_minutes=GPU_MINUTES, val_every=1000,
               ckpt_every=500, log_every=50, **LEGACY_RECIPE)
PAPER_MSE = (8, 12, 16, 24, 32, 64, 128, 256, 512, 1024, 2048)
PAPER_MSSSIM = (1.8, 3.6, 7.2, 14.4, 28.8)


def long_lambda(arch: str, metric: str) -> float:
    """The lambda that gets the long 256-px stage: the family's highest shipped lambda."""
    return max(QUICK_SHIP[(arch, metric)])


def round_suffixes(rounds: tuple[str, ...] = TOP_ROUNDS) -> list[str]:
    """Run-folder suffix of each top round, numbered within its kind: ``-long``, ``-long2``, ... for
    "cpu" rounds, ``-gpu``, ``-gpu2``, ... for "gpu" rounds."""
    names, seen = [], {"cpu": 0, "gpu": 0}
    for kind in rounds:
        seen[kind] += 1
        stem = {"cpu": "-long", "gpu": "-gpu"}[kind]
        names.append(stem if seen[kind] == 1 else f"{stem}{seen[kind]}")
    return names


def round_seed(k: int) -> int:
    """Crop seed of top round ``k`` (1-based): 0 before ``RESEED_FROM``, then ``k``."""
    return k if k >= RESEED_FROM else 0


def quick_tag(arch: str) -> str:
    """Run / weights name prefix of a quick-profile family."""
    from .zoo import CONTROL_SIZE

    return "gaacnn-small" if arch == "gaacnn" else f"mshp-N{CONTROL_SIZE['N']}M{CONTROL_SIZE['M']}"


def quick_jobs(arch: str = "gaacnn", base_steps: int = 2000, finetune_steps: int = 400,
               metrics: tuple[str, ...] = ("mse", "ms-ssim"), threads: int = 0,
               end_steps: int = END_STEPS, polish_steps: int = POLISH_STEPS,
               long_steps: int = LONG_STEPS, top_rounds: tuple[str, ...] = TOP_ROUNDS,
               refine_steps: int = REFINE_STEPS) -> list[TrainConfig]:
    """A base run at the highest MSE lambda, then a chain of fine-tunes per metric, each from the
    previous one, from high to low rate (small lambda steps move the rate fastest). The MS-SSIM
    chain starts from the MSE base (the authors also start MS-SSIM training on MSE). GAACNN's chains
    also go one step below their lowest lambda and one above their highest (``end_steps`` each).
    Then each lambda that ships (``QUICK_SHIP``) gets a 256-px stage (``<run>-p256``), and the top
    lambda of each metric (``long_lambda``) one run per entry of ``top_rounds``, each from the last:
    "cpu", ``long_steps`` more at batch 2; "gpu", batch 16 for ``GPU_STEPS`` or ``GPU_MINUTES``
    (named by ``round_suffixes``, crops drawn with ``round_seed``). With ``refine_steps``, the lower
    shipped lambdas refine down from the top instead (``refine_chain``, ``<run>-refine``) and the runs
    nothing shipped starts from are left out."""
    tag = quick_tag(arch)
    base = TrainConfig(arch=arch, preset="small", metric="mse", lmbda=QUICK_MSE[-1], steps=base_steps, batch=8,
                       patch=128, **LEGACY_RECIPE, val_every=1000, ckpt_every=200, log_every=20, threads=threads,
                       out=f"runs/quick/{tag}-mse-{QUICK_MSE[-1]}")
    jobs = [base]
    chains = {"mse": QUICK_MSE[-2::-1], "ms-ssim": QUICK_MSSSIM[::-1]}
    ends = {"mse": (QUICK_MSE_LOW, QUICK_MSE_HIGH), "ms-ssim": (QUICK_MSSSIM_LOW, QUICK_MSSSIM_HIGH)}

    def finetune(metric: str, lm: float, parent: str, steps: int) -> TrainConfig:
        return replace(base, metric=metric, lmbda=lm, out=f"runs/quick/{tag}-{metric}-{lm}", steps=steps,
                       val_every=steps, init=f"{parent}/checkpoint.pt")

    for metric in metrics:
        parent, top = base.out, None
        for lm in chains[metric]:
            jobs.append(finetune(metric, lm, parent, finetune_steps))
            parent = jobs[-1].out
            top = top or parent
        if arch == "gaacnn":
            low, high = ends[metric]
            jobs.append(finetune(metric, low, parent, end_steps))
            jobs.append(finetune(metric, high, base.out if metric == "mse" else top, end_steps))
    shipped = [job for job in jobs if job.lmbda in QUICK_SHIP.get((arch, job.metric), ())]
    polished = [replace(job, patch=POLISH_PATCH, batch=POLISH_BATCH, steps=polish_steps, val_every=polish_steps,
                        ckpt_every=100, init=f"{job.out}/checkpoint.pt", out=f"{job.out}-p256")
                for job in shipped]
    longer = []
    for job in polished:
        if not long_steps or job.lmbda != long_lambda(arch, job.metric):
            continue
        parent = job
        for k, (kind, suffix) in enumerate(zip(top_rounds, round_suffixes(top_rounds)), start=1):
            run = GPU_RUN if kind == "gpu" else dict(steps=long_steps, val_every=1000, ckpt_every=200)
            parent = replace(job, **run, init=f"{parent.out}/checkpoint.pt", seed=round_seed(k),
                             out=job.out.removesuffix("-p256") + suffix)
            longer.append(parent)
    refined = [job for metric in metrics for job in refine_chain(arch, metric, longer, refine_steps)]
    if not refined:
        return jobs + polished + longer
    return needed(jobs + polished + longer + refined, longer + refined)


def refine_chain(arch: str, metric: str, longer: list[TrainConfig], steps: int) -> list[TrainConfig]:
    """The shipped lambdas below the top, each fine-tuned from the one above it, the first from the
    top's round ``REFINE_FROM`` (none without that round or without steps)."""
    tops = [job for job in longer if job.metric == metric and job.out.endswith(REFINE_FROM)]
    if not steps or not tops:
        return []
    parent, chain = tops[0], []
    for lm in sorted(QUICK_SHIP[(arch, metric)], reverse=True)[1:]:
        parent = replace(parent, lmbda=lm, steps=steps, lr=REFINE_LR, batch=POLISH_BATCH, patch=POLISH_PATCH,
                         max_minutes=0.0, val_every=steps, ckpt_every=200, log_every=20,
                         seed=REFINE_SEED, init=f"{parent.out}/checkpoint.pt",
                         out=f"runs/quick/{quick_tag(arch)}-{metric}-{lm}-refine")
        chain.append(parent)
    return chain


def needed(jobs: list[TrainConfig], wanted: list[TrainConfig]) -> list[TrainConfig]:
    """``jobs`` less those no run in ``wanted`` starts from, directly or through others (in order)."""
    by_out, keep = {job.out: job for job in jobs}, set()
    for job in wanted:
        while job is not None and job.out not in keep:
            keep.add(job.out)
            job = by_out.get((job.init or "").removesuffix("/checkpoint.pt"))
    return [job for job in jobs if job.out in keep]


def ships(job: TrainConfig) -> bool:
    """Whether a quick-profile run is one of the shipped models: the last 256-px stage of a lambda
    in ``QUICK_SHIP`` (the last of ``TOP_ROUNDS`` for its highest lambda, else ``-refine``, or
    ``-p256`` without ``REFINE_STEPS``)."""
    if job.lmbda not in QUICK_SHIP.get((job.arch, job.metric), ()):
        return False
    if job.lmbda == long_lambda(job.arch, job.metric):
        return job.out.endswith(round_suffixes()[-1])
    return job.out.endswith("-refine" if REFINE_STEPS else "-p256")


def gpu_jobs(arch: str = "gaacnn") -> list[TrainConfig]:
    """The ``gpu`` profile: each lambda a fine-tune of the quick profile's base run (before its
    256-px stage), all independent, so they can run side by side on one GPU. (The shipped GPU runs
    started from the half-precision copy of that base that shipped before the 256-px stage existed.)"""
    tag = quick_tag(arch)
    return [TrainConfig(arch=arch, preset="small", metric="mse", lmbda=lm, patch=256, **GPU_RUN,
                        init=f"runs/quick/{tag}-mse-{QUICK_MSE[-1]}/checkpoint.pt", out=f"runs/gpu/{tag}-mse-{lm}")
            for lm in GPU_MSE]


def shipped_name(job: TrainConfig) -> str:
    """The weights name a profile's run ships under: its run folder's name, without the quick
    profile's ``-p256`` / ``-long<k>`` / ``-gpu<k>`` / ``-refine`` stage suffixes, with ``-gpu`` after the
    tag for the GPU profile
    (``runs/gpu/gaacnn-small-mse-0.013`` -> ``gaacnn-small-gpu-mse-0.013``)."""
    name = re.sub(r"-(p256|long\d*|gpu\d*|refine)$", "", job.out.rstrip("/").split("/")[-1])
    if job.out.startswith("runs/gpu/"):
        tag = quick_tag(job.arch)
        name = f"{tag}-gpu{name[len(tag):]}"
    return name


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
    ap.add_argument("--profile", default="quick", choices=["quick", "gpu", "paper", "default"])
    ap.add_argument("--control", action="store_true", help="train the CompressAI control instead")
    ap.add_argument("--base-steps", type=int, default=2000)
    ap.add_argument("--finetune-steps", type=int, default=400)
    ap.add_argument("--metrics", nargs="+", default=["mse", "ms-ssim"])
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    profile = "quick" if args.profile == "default" else args.profile
    arch = "mshp" if args.control else "gaacnn"
    if profile == "paper":
        jobs = paper_jobs()
    elif profile == "gpu":
        jobs = gpu_jobs(arch)
    else:
        jobs = quick_jobs(arch, args.base_steps, args.finetune_steps, tuple(args.metrics), args.threads)
    for job in jobs:
        if args.command == "list":
            print(job.out, job.metric, job.lmbda, job.steps)
        else:
            train(job, resume=True)


if __name__ == "__main__":
    main()
