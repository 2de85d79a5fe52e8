"""The settings of one training run (paper Sec. IV-A and issue 20's recipe), apart from the training
loop in ``train.py``: the command line takes its train options' defaults from here, and building it
(``gaacnn --help``) should need no torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    """One training run. The defaults are the recipe measured on this machine (issue 20, notes in
    ``docs/training-log.md``): batch 8 x 128 px, Adam at 3e-4 after a short warm-up, clipping at 1.0 on
    the main parameters, and a linear decay over the last ``decay`` of the budget.

    A *trunk* (``decay=0``) never decays: it grows run after run (``resume=True``, larger ``steps``).
    A *cooldown* starts from a trunk checkpoint with its Adam moments (``init`` + ``init_optimizer``)
    and decays over its whole budget (``decay=1``, ``warmup=0``): that is what ships."""

    out: str = "runs/quick"
    arch: str = "gaacnn"  # or "mshp" (the CompressAI control)
    preset: str = "small"
    context: bool = True
    metric: str = "mse"
    lmbda: float = 0.013
    steps: int = 1000
    batch: int = 8  # global batch, split over DDP processes
    patch: int = 128  # per pixel, 8 x 128 px costs what 2 x 256 does here; 8 x 256 costs 1.5x
    lr: float = 3e-4
    aux_lr: float = 1e-3
    clip: float = 1.0  # on the main parameters' gradient norm (never the quantiles')
    warmup: int = 200  # steps of linear warm-up from lr / warmup
    rewarm: int = 0  # steps of linear warm-up at the start of this invocation (resuming with a new batch or lr)
    preload: bool = False  # keep the training images on the training device and crop there (a GPU)
    decay: float = 0.2  # fraction of the budget, at its end, over which lr falls linearly to lr / 100
    milestones: tuple[float, ...] = ()  # fractions of the budget where lr drops 10x (the authors' schedule)
    ste: bool = False  # g_s trains on round(y) with a straight-through gradient (quantization.py)
    device: str = "auto"
    seed: int = 0
    train_set: str = "cid22-train"
    val_set: str = "cid22-valid"
    val_every: int = 500
    val_images: int = 41
    val_crop: int = 256
    ckpt_every: int = 250
    log_every: int = 10
    init: str | None = None  # weights or checkpoint to start from (a cooldown, another lambda)
    init_optimizer: bool = False  # with a checkpoint as ``init``: also take its Adam state (a cooldown)
    threads: int = 0  # torch CPU threads (0: leave the default)
    model_mode: str = "train"  # "eval" only for the DDP equivalence test (no noise, no dropout)
    max_minutes: float = 0.0  # wall-time budget: the schedule decays and the run ends by it; 0: none
    session_minutes: float = 0.0  # stop this invocation after so long, resumable (the schedule never sees it)
