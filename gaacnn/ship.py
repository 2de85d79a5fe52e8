"""Turn a training run into shipped weights: weights/<name>.pth + a manifest entry + its logs.

    python -m gaacnn.ship runs/quick/gaacnn-small-mse-0.013 --name gaacnn-small-mse-0.013 --family "GAACNN small mse"
    python -m gaacnn.ship --profile quick     # every finished run of `make train PROFILE=quick`
    python -m gaacnn.ship --profile gpu       # ... of `make train PROFILE=gpu`
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import torch

from . import manifest
from .weights import FORMAT, load_model, save_weights, weights_fingerprint
from .zoo import describe


def _lineage(init: str | None) -> tuple[int, float, list[str]]:
    """Steps, wall seconds and folders (base first) of the runs a fine-tune started from, following
    chained fine-tunes (base -> lambda 1 -> lambda 2 ...) back to the base."""
    runs: list[tuple[str, int, float]] = []  # (folder, steps, seconds), base first
    steps, wall, lineage = 0, 0.0, []  # of the shipped weights file the chain starts from, if any
    while init and Path(init).exists():
        state = torch.load(init, map_location="cpu", weights_only=False)
        if state.get("format") == FORMAT:  # shipped weights: totals in their meta, runs in the manifest
            meta = state.get("meta", {})
            entry = next((e for e in manifest.entries() if e["file"] == Path(init).name), {})
            steps, wall = meta.get("steps", 0), meta.get("wall_seconds", 0.0)
            lineage = entry.get("lineage", [str(init)])
            # A later run may have shipped over the file since (``-long`` over ``-p256``): its totals
            # then count the runs of ours that its lineage shares (dropped from ours) and, where ours
            # branched off (a refine chain from round 5 while round 6 ships the top), the runs past
            # the branch point (taken off its totals).
            folders = [folder for folder, _, _ in runs]
            if folders and folders[0] in lineage:
                fork = lineage.index(folders[0])
                shared = _shared_prefix(folders, lineage[fork:])
                steps, wall = _without(lineage[fork + shared:], steps, wall)
                lineage, runs = lineage[:fork + shared], runs[shared:]
            break
        run = Path(init).parent
        runs.insert(0, (str(run), state["step"], state["elapsed"]))
        init = json.loads((run / "config.json").read_text()).get("init")
    return (steps + sum(s for _, s, _ in runs), wall + sum(w for _, _, w in runs),
            lineage + [folder for folder, _, _ in runs])


def _shared_prefix(a: list[str], b: list[str]) -> int:
    """How many leading items ``a`` and ``b`` have in common."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _without(folders: list[str], steps: int, wall: float) -> tuple[int, float]:
    """``steps`` and ``wall`` less what the runs in ``folders`` trained (from their checkpoints)."""
    for folder in folders:
        ckpt = Path(folder) / "checkpoint.pt"
        if not ckpt.exists():
            raise FileNotFoundError(f"{ckpt} is gone: cannot count the steps before it in this lineage")
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        steps, wall = steps - state["step"], wall - state["elapsed"]
    return steps, wall


def ship_profile(profile: str = "quick", force: bool = False) -> list[dict]:
    """Ship every finished run of a training profile that is not shipped yet: ``quick`` (GAACNN small
    and the control, the lambdas in ``QUICK_SHIP``), ``gpu`` (their GPU fine-tunes) or ``paper``
    (the authors' presets)."""
    from .profiles import RETIRED, gpu_jobs, paper_jobs, quick_jobs, shipped_name, ships

    families = (("gaacnn", "GAACNN small"), ("mshp", "control mshp"))
    if profile == "paper":
        jobs = [(job, f"GAACNN {job.preset} {job.metric}") for job in paper_jobs()]
    elif profile == "gpu":
        jobs = [(job, f"{family} GPU {job.metric}") for arch, family in families for job in gpu_jobs(arch)]
    else:
        jobs = [(job, f"{family} {job.metric}") for arch, family in families
                for job in quick_jobs(arch) if ships(job) and f"{family} {job.metric}" not in RETIRED]
    shipped = {e["name"] for e in manifest.entries()}
    out = []
    for job, family in jobs:
        run, name = Path(job.out), shipped_name(job)
        ckpt = run / "checkpoint.pt"
        if not ckpt.exists() or (name in shipped and not force):
            continue
        if not finished(torch.load(ckpt, map_location="cpu", weights_only=False)):
            continue  # unfinished: resume it with `make train`
        out.append(ship(run, name, family))
    return out


def runs_of(history: dict) -> list[str]:
    """The runs a history continues, oldest first, ending with its own."""
    chain = []
    while history:
        chain.append(history["run"])
        history = history.get("parent")
    return chain[::-1]


def finished(state: dict) -> bool:
    """A checkpoint of a run that used up its budget (steps, or wall time for a timed run)."""
    return state.get("finished", state["step"] >= state["config"]["steps"])


def slim(run: Path) -> Path:
    """Shrink a finished run's checkpoint for copying it off a training machine: model only, half
    precision (shippable, no longer resumable). The full checkpoint is kept as checkpoint-full.pt."""
    ckpt = run / "checkpoint.pt"
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    if not finished(state):
        raise SystemExit(f"{run}: the run has not finished (step {state['step']}); resume it first")
    ckpt.replace(run / "checkpoint-full.pt")
    state["model"] = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    for key in ("opt", "aux_opt", "rng"):
        state.pop(key, None)
    torch.save(state, ckpt)
    return ckpt


def ship(run: Path, name: str, family: str, half: bool = True) -> dict:
    cfg = json.loads((run / "config.json").read_text())
    state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=False)
    model = load_model(run / "checkpoint.pt")
    val = {}
    if (run / "val.csv").exists():
        lines = (run / "val.csv").read_text().splitlines()
        if len(lines) > 1:
            val = dict(zip(lines[0].split(","), lines[-1].split(",")))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=manifest.WEIGHTS_DIR.parent).stdout.strip()
    init = cfg.get("init")
    history = state.get("history")
    if history:  # runs that record their own history: the totals over every run they continue
        totals = history["totals"]
        total_steps, wall, lineage = totals["steps"], totals["wall_seconds"], runs_of(history)
    else:  # runs from before histories: rebuilt from the run folders and the manifest
        parent_steps, parent_wall, parents = _lineage(init)
        total_steps, wall, lineage = parent_steps + state["step"], parent_wall + state["elapsed"], parents + [str(run)]
        totals = {}
    meta = {"steps": total_steps, "wall_seconds": round(wall, 1), "config": cfg, "history": history}
    target = manifest.WEIGHTS_DIR / f"{name}.pth"
    sha = save_weights(model, target, meta=meta, half=half)
    logs = manifest.WEIGHTS_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    shutil.copy(run / "train.csv", logs / f"{name}-train.csv")
    if (run / "val.csv").exists():
        shutil.copy(run / "val.csv", logs / f"{name}-val.csv")
    shipped = load_model(target, sha256=sha)
    desc = describe(shipped)
    device = state.get("hardware", f"cpu, {cfg.get('threads') or 'default'} torch threads")
    model_desc = (f"gaacnn {cfg['preset']} context={cfg['context']}" if cfg["arch"] == "gaacnn"
                  else f"mshp (CompressAI MeanScaleHyperprior N={desc['N']}, M={desc['M']}, control)")
    entry = {
        "name": name, "file": target.name, "sha256": sha, "fingerprint": weights_fingerprint(shipped).hex(),
        "family": family, "model": model_desc, "metric": cfg["metric"], "lambda": cfg["lmbda"],
        "steps": total_steps, "finetune_steps": state["step"] if init else 0, "init": init,
        "lineage": lineage,
        "patch": cfg["patch"], "batch": cfg["batch"], "train_set": cfg["train_set"], "seed": cfg.get("seed", 0),
        "wall_seconds": round(wall, 1), "commit": commit, "precision": "float16" if half else "float32",
        "budget": (f"{cfg['max_minutes']:g} min wall time (stopped at step {state['step']})"
                   if cfg.get("max_minutes") and state["step"] < cfg["steps"] else f"{cfg['steps']} steps"),
        "device": device, "validation_cid22_valid": val,
        **({"cpu_hours": totals["cpu_hours"], "gpu_hours": totals["gpu_hours"],
            "untracked_wall_seconds": totals.get("untracked_wall_seconds", 0.0)} if totals else {}),
        "train_log": f"logs/{name}-train.csv",
    }
    manifest.add(entry)
    return entry


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m gaacnn.ship")
    ap.add_argument("run", type=Path, nargs="?", help="a run folder (or --quick-profile)")
    ap.add_argument("--name")
    ap.add_argument("--family")
    ap.add_argument("--profile", choices=["quick", "gpu", "paper"], help="ship every finished run of this profile")
    ap.add_argument("--force", action="store_true", help="with --profile: ship again runs already shipped")
    ap.add_argument("--float32", action="store_true", help="keep float32 (default: half precision)")
    ap.add_argument("--slim", action="store_true",
                    help="only shrink RUN's finished checkpoint for copying (model, half precision)")
    ap.add_argument("--unship", nargs="+", metavar="NAME", help="take shipped weights out (file, logs, entry)")
    args = ap.parse_args()
    if args.unship:
        for name in args.unship:
            print("unshipped", manifest.remove(name)["file"])
        return
    if args.slim and args.run:
        print("slimmed", slim(args.run))
        return
    if args.profile:
        for entry in ship_profile(args.profile, args.force):
            print("shipped", entry["name"], entry["steps"], "steps")
        return
    if not (args.run and args.name and args.family):
        ap.error("give RUN --name --family, or --profile")
    print(json.dumps(ship(args.run, args.name, args.family, not args.float32), indent=2))


if __name__ == "__main__":
    main()
