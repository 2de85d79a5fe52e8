"""Turn a training run into shipped weights: weights/<name>.pth + a manifest entry + its logs.

    python -m gaacnn.release RUN --name NAME --family FAMILY [--precision int8]
    python -m gaacnn.release --paper             # every finished run of `make train PROFILE=paper`

The quick profile's families ship from their trunks' cooldowns (``python -m gaacnn.trunks ship``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import torch

from . import manifest
from .registry import describe
from .weights import load_model, save_weights, weights_fingerprint


def ship_paper(force: bool = False) -> list[dict]:
    """Ship every finished run of ``make train PROFILE=paper`` that is not shipped yet (the quick
    profile's families ship from their trunks: ``gaacnn.trunks.quick``)."""
    from .profiles import paper_jobs

    shipped = {e["name"] for e in manifest.entries()}
    out = []
    for job in paper_jobs():
        run = Path(job.out)
        name, ckpt = run.name, run / "checkpoint.pt"
        if not ckpt.exists() or (name in shipped and not force):
            continue
        if not finished(torch.load(ckpt, map_location="cpu", weights_only=False)):
            continue  # unfinished: resume it with `make train PROFILE=paper`
        out.append(ship(run, name, f"GAACNN {job.preset} {job.metric}"))
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


def ship(run: Path, name: str, family: str, precision: str = "float16") -> dict:
    """Write run's last checkpoint as weights/<name>.pth (``precision``: see ``weights.PRECISIONS``),
    copy its logs, and enter it in the manifest with the totals of its history."""
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
    if not history:
        raise SystemExit(f"{run}: the checkpoint records no history (a run from before histories); "
                         "train it on with the current code first")
    totals = history["totals"]  # over every run this one continues
    total_steps, wall, lineage = totals["steps"], totals["wall_seconds"], runs_of(history)
    meta = {"steps": total_steps, "wall_seconds": round(wall, 1), "config": cfg, "history": history}
    target = manifest.WEIGHTS_DIR / f"{name}.pth"
    sha = save_weights(model, target, meta=meta, precision=precision)
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
        "wall_seconds": round(wall, 1), "commit": commit, "precision": precision,
        "budget": (f"{cfg['max_minutes']:g} min wall time (stopped at step {state['step']})"
                   if cfg.get("max_minutes") and state["step"] < cfg["steps"] else f"{cfg['steps']} steps"),
        "device": device, "validation_cid22_valid": val,
        "cpu_hours": totals["cpu_hours"], "gpu_hours": totals["gpu_hours"],
        "untracked_wall_seconds": totals.get("untracked_wall_seconds", 0.0),
        "train_log": f"logs/{name}-train.csv",
    }
    manifest.add(entry)
    return entry


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m gaacnn.release")
    ap.add_argument("run", type=Path, nargs="?", help="a run folder (or --paper)")
    ap.add_argument("--name")
    ap.add_argument("--family")
    ap.add_argument("--paper", action="store_true", help="ship every finished run of the paper profile")
    ap.add_argument("--force", action="store_true", help="with --paper: ship again runs already shipped")
    ap.add_argument("--precision", default="float16", choices=["float32", "float16", "int8"])
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
    if args.paper:
        for entry in ship_paper(args.force):
            print("shipped", entry["name"], entry["steps"], "steps")
        return
    if not (args.run and args.name and args.family):
        ap.error("give RUN --name --family, or --paper")
    print(json.dumps(ship(args.run, args.name, args.family, precision=args.precision), indent=2))


if __name__ == "__main__":
    main()
