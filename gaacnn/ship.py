"""Turn a training run into shipped weights: weights/<name>.pth + a manifest entry + its logs.

    python -m gaacnn.ship runs/quick/gaacnn-small-mse-0.013 --name gaacnn-small-mse-0.013 --family "GAACNN small mse"
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import torch

from . import manifest
from .weights import load_model, save_weights, weights_fingerprint


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
    total_steps, wall, init = state["step"], state["elapsed"], cfg.get("init")
    if init and Path(init).exists():  # a fine-tune: count the steps and time of the run it started from
        base = torch.load(init, map_location="cpu", weights_only=False)
        total_steps, wall = total_steps + base["step"], wall + base["elapsed"]
    meta = {"steps": total_steps, "wall_seconds": round(wall, 1), "config": cfg}
    target = manifest.WEIGHTS_DIR / f"{name}.pth"
    sha = save_weights(model, target, meta=meta, half=half)
    logs = manifest.WEIGHTS_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    shutil.copy(run / "train.csv", logs / f"{name}-train.csv")
    if (run / "val.csv").exists():
        shutil.copy(run / "val.csv", logs / f"{name}-val.csv")
    shipped = load_model(target, sha256=sha)
    model_desc = (f"gaacnn {cfg['preset']} context={cfg['context']}" if cfg["arch"] == "gaacnn"
                  else "mshp (CompressAI MeanScaleHyperprior N=128, M=192, control)")
    entry = {
        "name": name, "file": target.name, "sha256": sha, "fingerprint": weights_fingerprint(shipped).hex(),
        "family": family, "model": model_desc, "metric": cfg["metric"], "lambda": cfg["lmbda"],
        "steps": total_steps, "finetune_steps": state["step"] if init else 0, "init": init,
        "patch": cfg["patch"], "batch": cfg["batch"], "train_set": cfg["train_set"],
        "wall_seconds": round(wall, 1), "commit": commit, "precision": "float16" if half else "float32",
        "device": "cpu (2 cores, 1 torch thread)", "validation_cid22_valid": val,
        "train_log": f"logs/{name}-train.csv",
    }
    manifest.add(entry)
    return entry


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m gaacnn.ship")
    ap.add_argument("run", type=Path)
    ap.add_argument("--name", required=True)
    ap.add_argument("--family", required=True)
    ap.add_argument("--float32", action="store_true", help="keep float32 (default: half precision)")
    args = ap.parse_args()
    print(json.dumps(ship(args.run, args.name, args.family, not args.float32), indent=2))


if __name__ == "__main__":
    main()
