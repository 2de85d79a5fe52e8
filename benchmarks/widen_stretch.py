"""Does a widened GAACNN trunk learn faster per CPU-minute than the trunk it was widened from?

Side by side from one trunk checkpoint, one thread each, the same crops in the same order (same seed):
``small`` as it is and its function-preserving widening (``gaacnn.widen``, default ``medium``), each
trained for the same wall time at the trunk's constant learning rate (Adam's moments carried over, a
100-step re-warm for both since the new weights start with zero moments), then each cooled down at the
trunk's lambda for the same number of steps (the probe notebook 04 plots for the trunks) and coded on
Kodak with real files. The cooled loss on CID22-valid is the measure; Kodak and the transforms' ceiling
(g_s of the unrounded latent, ``diagnostics.quantization_gap``) say where the gain sits.

    python benchmarks/widen_stretch.py runs/trunk/gaacnn-small-mse-0.013/checkpoint.pt --minutes 90
    python benchmarks/widen_stretch.py START --minutes 0      # the cooldowns of the two starts alone

Resumable: a second call with more minutes continues both stretches and cools them down again.
Results: benchmarks/results/widen_stretch_gaacnn.txt.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

TRUNK = "gaacnn-small-mse-0.013"


def stretch(start: str, out: str, minutes: float, changes: dict) -> int:
    """The trunk's recipe at constant lr from ``start`` for ``minutes`` of wall time, with ``changes``
    (a widened ``preset``, another ``batch`` and ``patch``); returns its step."""
    import torch

    from gaacnn import trunks

    ckpt = Path(out) / "checkpoint.pt"
    if minutes > 0:  # re-warmed once, at the start (new weights' moments are zero), not when continued
        trunks.branch(TRUNK, start, out, trunks.TRUNKS[TRUNK].lmbda, 10**7, threads=1, decay=0.0,
                      rewarm=0 if ckpt.is_file() else 100, val_every=0, session_minutes=minutes, **changes)
    return int(torch.load(ckpt, map_location="cpu", weights_only=False)["step"]) if ckpt.is_file() else 0


def cool(start: str, preset: str, out: str, lmbda: float, steps: int) -> dict:
    """A cooldown at ``lmbda`` (lr falling linearly to 1 %) and its CID22-valid row."""
    from gaacnn import trunks

    trunks.branch(TRUNK, start, out, lmbda, steps, threads=1, preset=preset)
    with open(Path(out) / "val.csv") as f:
        return list(csv.DictReader(f))[-1]


def model_of(run: str):
    """The model a run's checkpoint holds, built from its config (GAACNN, a widened GAACNN, the control)."""
    from gaacnn import weights
    from gaacnn.registry import build_model
    from gaacnn.widen import preset_named

    cfg = json.loads((Path(run) / "config.json").read_text())
    preset = preset_named(cfg["preset"]) if cfg["arch"] == "gaacnn" else cfg["preset"]
    model = build_model(cfg["arch"], preset, cfg["context"])
    weights.load_into(model, Path(run) / "checkpoint.pt")
    return model


def kodak(run: str) -> dict:
    """Kodak (24 images, real files) of a run's checkpoint, and its transforms' ceiling."""
    import numpy as np
    import torch

    from gaacnn.data import dataset_paths
    from gaacnn.diagnostics import quantization_gap
    from gaacnn.evaluate import _model_codec, load_images, mean_row, run_point

    torch.set_num_threads(1)
    model = model_of(run)
    model.update(force=True)
    model.eval()
    images = load_images(dataset_paths("kodak"))
    row = mean_row(run_point(*_model_codec(model), images, run, progress=False))
    gaps = [quantization_gap(model, torch.from_numpy(im.array).permute(2, 0, 1)[None].float() / 255) for im in images]
    return {**row, "ceiling": float(np.mean([g["psnr_unrounded"] for g in gaps]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("start", help="a checkpoint of the small trunk")
    ap.add_argument("--wide", default="medium", help="the widened preset (gaacnn.widen.WIDER)")
    ap.add_argument("--minutes", type=float, default=90.0, help="wall time of each stretch (both at once)")
    ap.add_argument("--lmbda", type=float, help="the cooldowns' lambda (default: the trunk's)")
    ap.add_argument("--cool-steps", type=int, default=400)
    ap.add_argument("--out", default="runs/widen-stretch")
    args = ap.parse_args()
    from gaacnn.trunks import TRUNKS
    from gaacnn.widen import widen_checkpoint

    args.lmbda = args.lmbda or TRUNKS[TRUNK].lmbda
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "33554432")  # glibc keeps its memory: 13-19 % a step
    os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", "4294967296")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    starts = {"small": args.start, args.wide: str(out / f"{args.wide}-start.pt")}
    if not Path(starts[args.wide]).is_file():
        widen_checkpoint(args.start, args.wide, starts[args.wide])
    arms = {p: str(out / f"{p}-stretch") for p in starts}
    # One thread each, side by side; spawned, so that each process starts with the malloc settings above.
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        steps = dict(zip(arms, pool.map(stretch, starts.values(), arms.values(), [args.minutes] * 2,
                                        [{"preset": p} for p in arms])))
        ends = [str(Path(arms[p]) / "checkpoint.pt") if steps[p] else starts[p] for p in arms]
        cools = [str(out / f"{p}-stretch{steps[p]}-cool{args.cool_steps}") for p in arms]
        rows = list(pool.map(cool, ends, arms.keys(), cools, [args.lmbda] * 2, [args.cool_steps] * 2))
        coded = list(pool.map(kodak, cools))
    print(f"# {args.minutes:g} minutes each at lr constant from {args.start}, then {args.cool_steps}-step cooldowns "
          f"at lambda {args.lmbda}")
    print("preset    stretch steps  CID22-valid loss  bpp    PSNR   Kodak bpp  PSNR dB  g_s(y) dB")
    for p, row, k in zip(arms, rows, coded):
        print(f"{p:9s} {steps[p]:14,d}  {float(row['loss']):16.5f}  {float(row['bpp']):.3f}  "
              f"{float(row['psnr']):.2f}  {k['bpp']:9.3f}  {k['psnr-rgb']:7.2f}  {k['ceiling']:9.2f}")


if __name__ == "__main__":
    main()
