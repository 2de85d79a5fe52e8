"""Should the GAACNN trunk's stable phase train on 2 x 256-px crops instead of 8 x 128-px ones?

The ladders cool down on 2 x 256 px since a border effect was measured (``cooldown_patch.py``), but the
trunk still trains on 8 x 128 px: a 2 x 2 hyper-latent, so the GAT hyperprior (Sec. III-C) learns on a
four-node graph where a Kodak image gives it 96 nodes, and the context model on an 8 x 8 latent. Same
pixels a step, same cost. Side by side from one trunk checkpoint, one thread each, the same seed: two
constant-lr stretches of the trunk's recipe for the same wall time, one per crop shape (Adam's moments
carried over, the same 100-step re-warm for both), then each cooled down exactly as a ladder rung is
(2 x 256 px, the trunk's lambda, lr falling linearly to 1 %) and coded on Kodak with real files.

    python benchmarks/trunk_patch.py runs/trunk/gaacnn-small-mse-0.013/checkpoint.pt --minutes 75

Resumable: a second call with more minutes continues both stretches and cools them down again.
Results: benchmarks/results/trunk_patch_gaacnn.txt.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from cooldown_patch import ARMS, cool
from widen_stretch import TRUNK, kodak, stretch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("start", help="a checkpoint of the GAACNN small trunk")
    ap.add_argument("--minutes", type=float, default=75.0, help="wall time of each stretch (both at once)")
    ap.add_argument("--cool-steps", type=int, default=400)
    ap.add_argument("--out", default="runs/trunk-patch")
    args = ap.parse_args()
    from gaacnn.trunks import TRUNKS

    lmbda = TRUNKS[TRUNK].lmbda
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "33554432")  # glibc keeps its memory: 13-19 % a step
    os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", "4294967296")
    out = Path(args.out)
    arms = {arm: str(out / f"{arm}-stretch") for arm in ARMS}
    n = len(arms)
    # One thread each, side by side; spawned, so that each process starts with the malloc settings above.
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
        steps = dict(zip(arms, pool.map(stretch, [args.start] * n, arms.values(), [args.minutes] * n,
                                        [ARMS[a] for a in arms])))
        ends = [str(Path(arms[a]) / "checkpoint.pt") if steps[a] else args.start for a in arms]
        cools = [str(out / f"{a}-stretch{steps[a]}-cool{args.cool_steps}") for a in arms]
        rows = list(pool.map(cool, [TRUNK] * n, ends, cools, [lmbda] * n, [args.cool_steps] * n, ["2x256"] * n))
        coded = list(pool.map(kodak, cools))
    print(f"# {args.minutes:g} minutes each at lr constant from {args.start}, then {args.cool_steps}-step "
          f"cooldowns on 2 x 256 px at lambda {lmbda}")
    print("trunk crops  stretch steps  CID22-valid loss  bpp    PSNR   Kodak bpp  PSNR dB  g_s(y) dB  Kodak loss")
    for arm, row, k in zip(arms, rows, coded):
        kodak_loss = lmbda * 255**2 * 10 ** (-k["psnr-rgb"] / 10) + k["bpp"]
        print(f"{arm:11s}  {steps[arm]:13,d}  {float(row['loss']):16.5f}  {float(row['bpp']):.3f}  "
              f"{float(row['psnr']):.2f}  {k['bpp']:9.3f}  {k['psnr-rgb']:7.2f}  {k['ceiling']:9.2f}  "
              f"{kodak_loss:10.4f}")


if __name__ == "__main__":
    main()
