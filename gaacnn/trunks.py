"""Trunks: one long constant-learning-rate run per family that keeps growing, carried in git, and the
short cooldowns branched off them that ship (issue 20's recipe; measurements in benchmarks/results).

    trunk (warm-up, then lr constant; never decays)  --grow, on any machine, run after run-->
        \\__ cooldown at lambda L (the trunk's weights and Adam moments, lr falling to 1 %) -> ships

Where this sits: data -> [train.py: one run] -> runs/trunk/<name>/checkpoint.pt <-> trunks/<name>/
(this module: the compact copy in git) -> cooldowns -> ship.py -> weights/.

A trunk's copy in git holds the float32 weights, Adam's moments in bfloat16 (about 8 bytes a
parameter, 15 MB for the small preset), the step, the RNG state, the run's history (segments,
parent, CPU/GPU-hours) and its logs, so that ``python -m gaacnn.trunks grow`` continues from a fresh
clone on another machine exactly where the last one stopped. The copy is committed and then taken out
of the tree again (``git rm -r trunks``): it stays in history, where ``restore`` finds it, while the
tree a GPU machine receives stays under its 64 MiB limit.

    python -m gaacnn.trunks grow gaacnn-small-mse-0.013 --minutes 60   # restore, train, stop resumably
    python -m gaacnn.trunks store gaacnn-small-mse-0.013                # compact copy into trunks/
    python -m gaacnn.trunks cooldown mshp-N64M96-mse-0.013 --lmbda 0.05 --steps 3000
    python -m gaacnn.trunks ship mshp-N64M96-mse-0.013                  # its cooldowns as the families (LADDERS)
    python -m gaacnn.trunks record      # cooldowns at the trunks' own recipe under runs/ -> benchmarks/results
    python -m gaacnn.trunks quick --minutes 60        # all of it, resumable: grow, cooldowns, ship (make train)

On a lent GPU (``make gpu-continue``, 15 minutes of device time in all): the trunk continues at 8x the
batch with the learning rate raised by sqrt(2) (by sqrt(8), the square root of the batch ratio, it
diverged) and re-warmed from zero, the training images held on the GPU and cropped there, the transforms
in bf16 and the entropy models in float32 (``GPU_CONTINUE``). A GPU machine that reaches no network and
takes a 64 MiB tree gets the data, the wheels and the trunk from ``scripts/gpu_bundle.sh`` and runs
``scripts/gpu_continue.sh`` (first run on an H200 on November 30, 2026). Rehearsed on the CPU by
tests/test_trunks.py.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import torch

from .errors import GaacnnError
from .train import TrainConfig, history_of, train

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / "trunks"
LOGS = ("train.csv", "val.csv", "config.json")

# The recipe measured here (TrainConfig's defaults: 8 x 128 px, lr 3e-4, clip 1.0 on the main
# parameters) with no decay. Both start from the shipped top MSE weights of their family (measured for
# the control: 2.28 against 6.80 validation loss after 2,000 steps from scratch,
# benchmarks/results/trunk_start_control.txt). Lambda 0.013 sits in the middle of the shipped ladder.
_TRUNK = dict(metric="mse", lmbda=0.013, steps=10**7, decay=0.0, warmup=500, ckpt_every=250, log_every=25)
TRUNKS: dict[str, TrainConfig] = {
    "gaacnn-small-mse-0.013": TrainConfig(arch="gaacnn", preset="small", val_every=1000,
                                          init="weights/gaacnn-small-mse-0.1.pth",  # began from the chains' 0.18
                                          out="runs/trunk/gaacnn-small-mse-0.013", **_TRUNK),
    # The control trunk began from the chains' 0.0483 and is not in git yet: a fresh clone restarts it from
    # the shipped cooldown at its own lambda (a 3,000-step branch of step 18,808).
    "mshp-N64M96-mse-0.013": TrainConfig(arch="mshp", val_every=2000, init="weights/mshp-N64M96-mse-0.013.pth",
                                         out="runs/trunk/mshp-N64M96-mse-0.013", **_TRUNK),
    # GAACNN small with a 64-channel latent (widen.SMALL_M64): small's 40 channels cap its top near 29.4 dB
    # on Kodak whatever the rate (benchmarks/results/latent_width_gaacnn.txt), so no ladder of it reaches
    # 0.8 bpp. A 96-channel trunk (7.22 M parameters, 58 MB compact) is too big to carry in git; 64 fits
    # (30 MB) and, side by side, lifted the transforms' ceiling about as far as 72
    # (latent_width_m64_m72_gaacnn.txt, latent_width_sizes.txt). It begins as the small trunk widened at
    # its step 34,723, Adam's moments included (WIDENED), and grows on its own from there. Its first 4,014
    # steps at lambda 0.013 left CID22-valid where small's trunk is (trunk_m64_first_hour.txt), so it is not
    # in git yet and no ladder ships from it.
    "gaacnn-small-m64-mse-0.013": TrainConfig(arch="gaacnn", preset="small-m64", val_every=1000,
                                              init="runs/trunk/gaacnn-small-m64-mse-0.013-start.pt",
                                              init_optimizer=True, out="runs/trunk/gaacnn-small-m64-mse-0.013",
                                              **_TRUNK),
}
# A trunk that begins as another one widened (gaacnn.widen): its first grow, finding neither a checkpoint
# nor a copy in git, widens the source trunk's checkpoint into its init file.
WIDENED: dict[str, str] = {"gaacnn-small-m64-mse-0.013": "gaacnn-small-mse-0.013"}


# What a lent GPU changes for the continuation: 8x the CPU batch, the learning rate re-warmed over 300
# steps to 3e-4 x sqrt(2). On one H200 (benchmarks/results/gpu_continue_h200.txt) lr 3e-4 x sqrt(8) ran
# 2,720 steps and then diverged (loss inf at step 27,779); x sqrt(2) ran on from its step 27,500 snapshot.
# No validation there: the validation set does not travel (scripts/gpu_continue.sh), and the GPU's
# minutes go to training; the snapshots it returns are validated here.
GPU_CONTINUE = dict(device="cuda", batch=64, lr=3e-4 * 2**0.5, rewarm=300, preload=True, val_every=0,
                    ckpt_every=250)


# What ships: per family, one cooldown of its trunk per lambda, under the family's manifest names (a
# family's other entries go when its ladder ships). MS-SSIM ladders branch off the MSE trunk, as the
# paper starts its MS-SSIM models from MSE ones. New ladders ship as int8 files (weights.PRECISIONS:
# 1.8 against 3.5 MB for the control; on Kodak -0.006 dB and +0.15 % bpp for the control 0.013,
# benchmarks/results/int8_weights_kodak.txt), so that the shipped models (24 while KEPT holds two families,
# 49 MB) fit the 60 MB the tracked tree may hold.
# A ladder ships again only when it raises its family's Kodak BD-PSNR (BD-MSSSIM) against JPEG by at
# least 0.2 dB (issue 20).
# A lambda far from the trunk's needs a long cooldown to move the transforms there: at 0.1 the control
# coded Kodak at 0.733 bpp after 600 steps and 0.925 after 3,000 (benchmarks/results/cooldown_length_kodak.txt).
# With 3,000 steps its top, 0.05, reaches 0.836 bpp. GAACNN small's rate barely moves (0.2 for 2,000
# steps: 0.495 bpp), nor does it from a start with a quantizer of half the step (latent_gain_top_gaacnn.txt):
# its transforms cap it near 29.2 dB, so its top stays short of 0.8 bpp.
# The cooldowns train on 2 x 256-px crops, the trunk on 8 x 128 px (the same pixels a step, the same cost): a
# 128-px crop gives GAACNN's GAT hyperprior a 2 x 2 graph and its context an 8 x 8 latent, and from the same
# trunk step a 256-px cooldown coded Kodak with 17 % fewer bits at 0.03 dB less, the control's with 6 % fewer
# (benchmarks/results/cooldown_patch_kodak.txt). Both families cool down alike, so the ablation stays fair.
_CROPS = dict(batch=2, patch=256)
LADDERS: dict[str, dict] = {
    "control mshp mse": {"trunk": "mshp-N64M96-mse-0.013", "prefix": "mshp-N64M96-mse", "metric": "mse",
                         "lambdas": (0.0005, 0.0025, 0.013, 0.05), "steps": 3000, "precision": "int8", **_CROPS},
    "control mshp ms-ssim": {"trunk": "mshp-N64M96-mse-0.013", "prefix": "mshp-N64M96-ms-ssim", "metric": "ms-ssim",
                             "lambdas": (1.2, 4.58, 16.64, 60.5), "steps": 600, "precision": "int8", **_CROPS},
    # GAACNN small: its trunk ran steps 25,059-28,732 at batch 64 on an H200, so its ladders are "GPU"
    # families (ship_ladder checks), which the ablation pairs only with a control that had such a stretch.
    # 1,200-step MSE cooldowns on 256 px from trunk step 34,723 measured +2.883 dB BD-PSNR against JPEG on
    # Kodak (fp32; cooldown_patch_kodak.txt), the CPU-only ladder +2.304; at 0.013 on 128 px 1,200 steps
    # bought -1.4 % loss over 400.
    "GAACNN small GPU mse": {"trunk": "gaacnn-small-mse-0.013", "prefix": "gaacnn-small-gpu-mse", "metric": "mse",
                             "lambdas": (0.0009, 0.0035, 0.013, 0.1), "steps": 1200, "precision": "int8", **_CROPS},
    "GAACNN small GPU ms-ssim": {"trunk": "gaacnn-small-mse-0.013", "prefix": "gaacnn-small-gpu-ms-ssim",
                                 "metric": "ms-ssim", "lambdas": (1.2, 4.58, 16.64, 60.5), "steps": 400,
                                 "precision": "int8", **_CROPS},
}
# Ladders cooled down from trunk steps since passed, kept shipped for the ablation: it pairs equal steps at
# equal batch, and these GAACNN small ladders (400-step cooldowns on 128 px from trunk steps 19,283, MSE, and
# 17,402, MS-SSIM, before the H200 stretch) are what the control's CPU-only ladders pair with. `make train`
# does not redo them. Each goes once its successor has a control to pair with (the control's trunk given
# the same batch-64 stretch on a GPU: scripts/gpu_continue.sh).
KEPT: dict[str, dict] = {
    "GAACNN small mse": {"prefix": "gaacnn-small-mse", "metric": "mse", "lambdas": (0.0009, 0.0035, 0.013, 0.1),
                         "successor": "GAACNN small GPU mse"},
    "GAACNN small ms-ssim": {"prefix": "gaacnn-small-ms-ssim", "metric": "ms-ssim",
                             "lambdas": (1.2, 4.58, 16.64, 60.5), "successor": "GAACNN small GPU ms-ssim"},
}


def cooldown_steps(ladder: dict) -> dict[float, int]:
    """Each lambda's cooldown length: ``steps`` is one length for the whole ladder, or one per lambda
    (a lambda far from the trunk's needs more steps to move its transforms there)."""
    steps = ladder["steps"]
    lengths = steps if isinstance(steps, tuple) else (steps,) * len(ladder["lambdas"])
    if len(lengths) != len(ladder["lambdas"]):
        raise GaacnnError(f"{len(lengths)} cooldown lengths for {len(ladder['lambdas'])} lambdas")
    return dict(zip(ladder["lambdas"], lengths))


def cooldown_crops(ladder: dict) -> tuple[int, int]:
    """The batch and patch a ladder's cooldowns train on: its own, else its trunk's."""
    trunk = _trunk(ladder["trunk"])
    return ladder.get("batch", trunk.batch), ladder.get("patch", trunk.patch)


def ladder_names() -> dict[str, tuple[str, str, float]]:
    """Manifest name -> (trunk, metric, lambda) of every model a ladder ships."""
    return {f"{lad['prefix']}-{lm}": (lad["trunk"], lad["metric"], lm) for lad in LADDERS.values()
            for lm in lad["lambdas"]}


def cooldown_dir(name: str, metric: str, lmbda: float, tag: str = "") -> Path:
    return ROOT / f"{_trunk(name).out}-cool-{metric}-{lmbda}{tag}"


def _parent(run: Path) -> dict:
    """The parent a run's checkpoint names in its history ({} without a checkpoint or a parent)."""
    if not (run / "checkpoint.pt").is_file():
        return {}
    history = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False).get("history") or {}
    return history.get("parent") or {}


def trained_on_gpu(run: Path) -> bool:
    """Whether any step behind a run's checkpoint (its own, its trunk's, their parents') ran on a GPU:
    a GPU step here is 8x the CPU's batch, so such a ladder is no like-for-like rival of a CPU-only one."""
    return (history_of(run / "checkpoint.pt") or {}).get("totals", {}).get("gpu_hours", 0.0) > 0


def branch_step(run: Path) -> int:
    """The trunk step a cooldown branched from (-1 without a checkpoint)."""
    return _parent(run).get("step", -1)


def ship_ladder(family: str) -> list[dict]:
    """Ship a family's finished cooldowns as its models, and take the family's other entries out."""
    from . import manifest, release

    ladder = LADDERS[family]
    shipped = []
    for lm, steps in cooldown_steps(ladder).items():
        run = cooldown_dir(ladder["trunk"], ladder["metric"], lm)
        if not (run / "checkpoint.pt").is_file():
            raise GaacnnError(f"no cooldown at lambda {lm} in {run}: run `python -m gaacnn.trunks cooldown "
                              f"{ladder['trunk']} --metric {ladder['metric']} --lmbda {lm} "
                              f"--steps {steps}` first")
        gpu = trained_on_gpu(run)
        if gpu != manifest.is_gpu_family(family):
            raise GaacnnError(f"{run} trained {'partly on a GPU' if gpu else 'on CPUs only'}: its family needs "
                              f"{'' if gpu else 'no '}'GPU' in its name, not {family!r} (the ablation pairs GPU "
                              "families with GPU families)")
        shipped.append(release.ship(run, f"{ladder['prefix']}-{lm}", family, precision=ladder["precision"]))
    keep = {e["name"] for e in shipped}
    for entry in manifest.entries():
        if entry["family"] == family and entry["name"] not in keep:
            manifest.remove(entry["name"])
    return shipped


def quick(minutes: float = 0.0, threads: int = 0, families: tuple[str, ...] | None = None) -> list[dict]:
    """The quick profile (``make train PROFILE=quick``), resumable wherever it stands: grow each trunk
    by ``minutes``, then give every ladder lambda a cooldown from the trunk's current step (those
    missing, unfinished, or branched from an earlier step), then ship the ladders."""
    families = families or tuple(LADDERS)
    trunks = dict.fromkeys(LADDERS[f]["trunk"] for f in families)
    for name in trunks:
        if minutes:
            grow(name, minutes, threads)
    shipped = []
    for family in families:
        ladder = LADDERS[family]
        now = _step(ROOT / _trunk(ladder["trunk"]).out / "checkpoint.pt")
        crops = cooldown_crops(ladder)
        for lm, steps in cooldown_steps(ladder).items():
            run = cooldown_dir(ladder["trunk"], ladder["metric"], lm)
            if run.is_dir() and (branch_step(run) not in (-1, now) or _planned(run) not in (None, (steps, *crops))):
                shutil.rmtree(run)  # branched from an older trunk, or of another length or patch: redo it
            cooldown(ladder["trunk"], lm, steps, ladder["metric"], threads, batch=crops[0], patch=crops[1])
        shipped += ship_ladder(family)
    return shipped


def cooled_log() -> Path:
    """Where every cooled point is recorded, in git: runs/ does not outlive the machine that trained it
    (a session on a new machine found runs/ empty, and the points notebook 04 had drawn went with it)."""
    return ROOT / "benchmarks" / "results" / "trunk_cooldowns.csv"


COOLED_FIELDS = ("trunk", "trunk_step", "trunk_cpu_hours", "steps", "loss", "bpp", "psnr", "run")


def _own_cpu_hours(history: dict) -> float:
    """CPU core-hours of a run's own segments (GPU segments cost none; its parent's are not counted)."""
    return sum(s["seconds"] * s["workers"] / 3600 for s in history.get("segments", []) if s["kind"] == "cpu")


def _found_under_runs(name: str) -> list[dict]:
    """The finished cooldowns of the trunk at the trunk's own metric, lambda, batch and patch under runs/."""
    trunk = _trunk(name)
    recipe = (trunk.metric, trunk.lmbda, 1.0, trunk.batch, trunk.patch)
    points = []
    for config in sorted((ROOT / "runs").rglob("config.json")):
        run = config.parent
        cfg = json.loads(config.read_text())
        if tuple(cfg.get(k) for k in ("metric", "lmbda", "decay", "batch", "patch")) != recipe:
            continue
        val = run / "val.csv"
        rows = list(csv.DictReader(val.read_text().splitlines())) if val.is_file() else []
        if not rows or int(rows[-1]["step"]) != int(cfg["steps"]):  # a cooldown validates once, at its end
            continue
        parent = _parent(run)
        if Path(parent.get("run", "")).name != Path(trunk.out).name:
            continue
        points.append({"trunk": name, "trunk_step": parent["step"], "trunk_cpu_hours": _own_cpu_hours(parent),
                       "steps": int(cfg["steps"]), "run": str(run.relative_to(ROOT)),
                       **{k: float(rows[-1][k]) for k in ("loss", "bpp", "psnr")}})
    return points


def _recorded() -> list[dict]:
    log = cooled_log()
    rows = list(csv.DictReader(log.read_text().splitlines())) if log.is_file() else []
    ints, floats = ("trunk_step", "steps"), ("trunk_cpu_hours", "loss", "bpp", "psnr")
    return [{**r, **{k: int(r[k]) for k in ints}, **{k: float(r[k]) for k in floats}} for r in rows]


def cooled_points(name: str) -> list[dict]:
    """Every finished cooldown of the trunk at the trunk's own recipe (metric, lambda, batch, patch):
    those recorded in ``cooled_log()`` and those found anywhere under runs/, with the trunk step it
    branched from, the trunk's CPU-hours there, its length and its last CID22-valid row. At a constant lr
    the trunk's own validation is noisy; a cooldown at the same lambda says what the weights at that step
    are worth once the lr has decayed (notebook 04's plot)."""
    def key(p: dict) -> tuple:  # one cooldown, wherever its folder has been moved since it was recorded
        return p["trunk_step"], p["steps"], f"{p['loss']:.5f}"

    found = {key(p): p for p in _recorded() if p["trunk"] == name}
    found.update({key(p): p for p in _found_under_runs(name)})
    return sorted(found.values(), key=lambda p: (p["trunk_step"], p["steps"], p["run"]))


def record_cooled() -> Path:
    """Add every trunk's cooled points found under runs/ to ``cooled_log()`` (kept for git)."""
    rows = [p for name in TRUNKS for p in cooled_points(name)]
    rows += [p for p in _recorded() if p["trunk"] not in TRUNKS]  # a trunk retired since: its rows stay
    log = cooled_log()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COOLED_FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for p in sorted(rows, key=lambda p: (p["trunk"], p["trunk_step"], p["steps"], p["run"])):
            writer.writerow({**p, "trunk_cpu_hours": f"{p['trunk_cpu_hours']:.4f}", "loss": f"{p['loss']:.5f}",
                             "bpp": f"{p['bpp']:.5f}", "psnr": f"{p['psnr']:.4f}"})
    return log


def progress_run(name: str) -> Path:
    """The folder whose checkpoint and val.csv show the trunk's progress (notebook 04): runs/ on the
    machine that grew it, else the copy in trunks/, else the last copy git history holds."""
    local, stored = ROOT / _trunk(name).out, STORE / name
    if (local / "val.csv").is_file():
        return local
    if (stored / "val.csv").is_file():
        return stored
    return from_history(name) or stored


def _planned(run: Path) -> tuple[int, int, int] | None:
    """The length, batch and patch a cooldown folder was started with (None before its config is written)."""
    config = run / "config.json"
    if not config.is_file():
        return None
    cfg = json.loads(config.read_text())
    return int(cfg["steps"]), int(cfg["batch"]), int(cfg["patch"])


def _trunk(name: str) -> TrainConfig:
    try:
        return TRUNKS[name]
    except KeyError:
        raise GaacnnError(f"unknown trunk {name!r}; the trunks are {', '.join(TRUNKS)}") from None


def _step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=False)["step"]) if path.is_file() else -1


def steps_by_batch(history: dict) -> dict[int | None, int]:
    """Steps a run made at each batch size, its own segments only (None: a segment that predates the
    record of its batch). The ablation pairs equal steps; a stretch at 8x the batch on a GPU must be
    matched by one at the same batch on the other side."""
    out: dict[int | None, int] = {}
    for seg in history.get("segments", []):
        out[seg.get("batch")] = out.get(seg.get("batch"), 0) + seg["to_step"] - seg["from_step"]
    return out


def describe(name: str) -> str:
    """One line for ``trunks list``: where the trunk stands in runs/ and trunks/, and its steps per batch."""
    run = ROOT / _trunk(name).out / "checkpoint.pt"
    state = torch.load(run, map_location="cpu", weights_only=False) if run.is_file() else {"step": -1}
    line = f"{name}: runs/ at step {state['step']}, trunks/ at step {_step(STORE / name / 'checkpoint.pt')}"
    if "history" in state:
        per = steps_by_batch(state["history"])
        line += " (" + ", ".join(f"batch {b or 'not recorded'}: {n:,} steps" for b, n in
                                 sorted(per.items(), key=lambda kv: kv[0] or 0)) + ")"
    return line


def compact(state: dict) -> dict:
    """A training checkpoint for git: Adam's moments in bfloat16 (its exponent range keeps the tiny
    second moments that float16 would flush to zero), everything else as it was."""
    out = dict(state)
    opt = dict(state["opt"])
    opt["state"] = {k: {n: (v.to(torch.bfloat16) if torch.is_tensor(v) and v.dim() > 0 else v)
                        for n, v in s.items()} for k, s in state["opt"]["state"].items()}
    out["opt"] = opt
    return out


def store(name: str) -> Path:
    """Copy the trunk's checkpoint (compacted) and logs from runs/ into trunks/ (for git)."""
    run, target = ROOT / _trunk(name).out, STORE / name
    if not (run / "checkpoint.pt").is_file():
        raise GaacnnError(f"no checkpoint in {run}: grow the trunk first")
    target.mkdir(parents=True, exist_ok=True)
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    torch.save(compact(state), target / "checkpoint.pt")
    for log in LOGS:
        if (run / log).is_file():
            shutil.copy2(run / log, target / log)
    record_cooled()
    return target / "checkpoint.pt"


def from_history(name: str) -> Path | None:
    """The trunk's last stored copy from git history, extracted into build/ (a trunk is committed and then
    taken out of the tree again, so that the tree a GPU machine receives stays small); None without one."""
    import subprocess

    rel = f"{STORE.relative_to(ROOT)}/{name}"
    found = subprocess.run(["git", "log", "--diff-filter=AM", "--format=%H", "-1", "--", f"{rel}/checkpoint.pt"],
                           capture_output=True, text=True, cwd=ROOT)
    commit = found.stdout.strip()
    if found.returncode or not commit:
        return None
    target = ROOT / "build" / "trunks" / name
    target.mkdir(parents=True, exist_ok=True)
    for f in ("checkpoint.pt", *LOGS):
        blob = subprocess.run(["git", "show", f"{commit}:{rel}/{f}"], capture_output=True, cwd=ROOT)
        if blob.returncode == 0:
            (target / f).write_bytes(blob.stdout)
    return target


def restore(name: str) -> bool:
    """Copy the trunk into runs/ from trunks/, or else from git history, when that copy is further
    along (a fresh clone, or another machine grew it); returns whether it did."""
    run, source = ROOT / _trunk(name).out, STORE / name
    if not (source / "checkpoint.pt").is_file():
        source = from_history(name) or source
    if _step(source / "checkpoint.pt") <= _step(run / "checkpoint.pt"):
        return False
    run.mkdir(parents=True, exist_ok=True)
    for f in ("checkpoint.pt", *LOGS):
        if (source / f).is_file():
            shutil.copy2(source / f, run / f)
    return True


def widened_start(name: str) -> Path | None:
    """The init file of a WIDENED trunk that has no checkpoint yet: its source trunk's checkpoint (restored
    from git if need be) widened to the trunk's preset; None for other trunks, or one already begun."""
    cfg = _trunk(name)
    if name not in WIDENED or (ROOT / cfg.out / "checkpoint.pt").is_file():
        return None
    start = ROOT / cfg.init
    if not start.is_file():
        from .widen import widen_checkpoint

        restore(WIDENED[name])
        source = ROOT / _trunk(WIDENED[name]).out / "checkpoint.pt"
        if not source.is_file():
            raise GaacnnError(f"{name} begins as {WIDENED[name]} widened: grow or restore that trunk first")
        start.parent.mkdir(parents=True, exist_ok=True)
        widen_checkpoint(source, cfg.preset, start)
    return start


def grow(name: str, minutes: float, threads: int = 0, device: str = "auto", **changes) -> dict:
    """Restore the trunk if git holds more of it, then train it on for ``minutes`` (resumable);
    ``changes`` override the recipe for this session (a GPU's batch and learning rate)."""
    restore(name)
    widened_start(name)
    cfg = replace(_trunk(name), session_minutes=minutes, threads=threads, device=device, **changes)
    cfg = replace(cfg, out=str(ROOT / cfg.out), init=str(ROOT / cfg.init) if cfg.init else None)
    return train(cfg, resume=True)


def branch(name: str, start: Path | str, out: Path | str, lmbda: float, steps: int, metric: str = "mse",
           threads: int = 0, **changes) -> dict:
    """A run of the trunk's recipe from ``start`` (its checkpoint, a snapshot of it, or its widening by
    ``gaacnn.widen``) with the start's Adam moments. As it stands a cooldown: lr falling linearly to 1 %
    over ``steps``. ``changes`` override the recipe: ``preset`` (a widened start's),
    ``decay=0.0, session_minutes=M`` (a constant-lr stretch, to compare trunks side by side)."""
    cfg = replace(_trunk(name), metric=metric, lmbda=lmbda, steps=steps, decay=1.0, warmup=0, init=str(start),
                  init_optimizer=True, out=str(out), val_every=steps, ckpt_every=min(250, steps), threads=threads)
    return train(replace(cfg, **changes), resume=True)


def cooldown(name: str, lmbda: float, steps: int, metric: str = "mse", threads: int = 0, tag: str = "",
             **crops) -> dict:
    """A branch of the trunk's current checkpoint at ``lmbda`` whose lr falls linearly to 1 % over
    ``steps``, continuing the trunk's Adam moments: what ships. Its history names the trunk and step.
    ``crops``: another ``batch`` and ``patch`` than the trunk's (a ladder's, ``cooldown_crops``)."""
    start = ROOT / _trunk(name).out / "checkpoint.pt"
    if not start.is_file():
        raise GaacnnError(f"no checkpoint in {start.parent}: grow or restore the trunk first")
    result = branch(name, start, cooldown_dir(name, metric, lmbda, tag), lmbda, steps, metric, threads, **crops)
    record_cooled()
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m gaacnn.trunks", description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["grow", "store", "restore", "cooldown", "ship", "list", "quick", "record"])
    ap.add_argument("name", nargs="?", help="a trunk (default: all, for grow/store/restore/list)")
    ap.add_argument("--minutes", type=float, default=60.0, help="grow: wall time of this session")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--lmbda", type=float, help="cooldown: the lambda that ships")
    ap.add_argument("--metric", default="mse", choices=["mse", "ms-ssim"])
    ap.add_argument("--steps", type=int, default=600, help="cooldown: its length")
    ap.add_argument("--batch", type=int, help="cooldown: another batch than the trunk's")
    ap.add_argument("--patch", type=int, help="cooldown: another patch than the trunk's (256: 2 x 256 px)")
    ap.add_argument("--gpu", action="store_true", help="grow: continue on a GPU with GPU_CONTINUE's settings")
    ap.add_argument("--lr", type=float, help="grow --gpu: another learning rate than GPU_CONTINUE's")
    ap.add_argument("--until", type=int, help="grow: stop at this step (the control matching a GPU stretch)")
    args = ap.parse_args(argv)
    if args.command == "quick":  # grow every trunk by --minutes (0: not at all), then cooldowns and ship
        for entry in quick(args.minutes, args.threads):
            print(f"shipped {entry['name']}: {entry['steps']} steps, {entry.get('cpu_hours', 0):.2f} CPU-hours")
        return
    if args.command == "record":  # the cooled points under runs/ into git's record (notebook 04's diamonds)
        print(record_cooled())
        return
    names = [args.name] if args.name else list(TRUNKS)
    until = {"steps": args.until} if args.until else {}
    for name in names:
        if args.command == "grow" and args.gpu:  # --device cpu: the same settings rehearsed on the CPU
            gpu = {**GPU_CONTINUE, "device": args.device.replace("auto", "cuda"), "lr": args.lr or GPU_CONTINUE["lr"]}
            grow(name, args.minutes, args.threads, **gpu, **until)
        elif args.command == "grow":
            grow(name, args.minutes, args.threads, args.device, **until)
        elif args.command == "store":
            print(f"{name}: {store(name)}")
        elif args.command == "restore":
            print(f"{name}: {'restored from trunks/' if restore(name) else 'runs/ is up to date'}")
        elif args.command == "ship":
            for family in [f for f, lad in LADDERS.items() if lad["trunk"] == name]:
                for entry in ship_ladder(family):
                    print(f"shipped {entry['name']}: {entry['steps']} steps, {entry.get('cpu_hours', 0):.2f} CPU-hours")
        elif args.command == "cooldown":
            if args.lmbda is None:
                raise SystemExit("cooldown needs --lmbda")
            crops = {k: v for k, v in (("batch", args.batch), ("patch", args.patch)) if v}
            cooldown(name, args.lmbda, args.steps, args.metric, args.threads, **crops)
        else:
            print(describe(name))


if __name__ == "__main__":
    main()
