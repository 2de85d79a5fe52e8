"""Does GAACNN small's cooldown gain on Kodak when it trains on 256-px patches instead of 128-px ones?

The trunk trains on 8 x 128-px crops: an 8x8 latent and a 2x2 hyper-latent, so the GAT hyperprior's graph
has four nodes and no latent position is more than 3 from an edge, while a Kodak image has a 48x32 latent
and a 12x8 graph (Sec. III-C). Issue 20 asks for a larger-patch stage only where a border effect is
measured. Side by side from one trunk checkpoint, one thread each, the same seed: two cooldowns of the
same length at the same lambda (the trunk's Adam moments, lr falling linearly to 1 %), one at batch
8 x 128 px and one at batch 2 x 256 px (the same pixels a step); then CID22-valid, Kodak with real files,
the transforms' ceiling (``diagnostics.quantization_gap``), and kodim01's bits per latent position by
distance from the edge (``diagnostics.bits_by_border_distance``).

    python benchmarks/cooldown_patch.py runs/trunk/gaacnn-small-mse-0.013/checkpoint.pt --steps 1200

Resumable (the cooldowns are ``trunks.branch`` runs). Results: benchmarks/results/cooldown_patch_kodak.txt.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from widen_stretch import TRUNK, kodak, model_of

ARMS = {"8x128": dict(batch=8, patch=128), "2x256": dict(batch=2, patch=256)}


def cool(trunk: str, start: str, out: str, lmbda: float, steps: int, arm: str) -> dict:
    """A cooldown of ``trunk`` at ``lmbda`` with the arm's batch and patch; its CID22-valid row and its
    mean seconds a step."""
    from gaacnn import trunks

    trunks.branch(trunk, start, out, lmbda, steps, threads=1, **ARMS[arm])
    with open(Path(out) / "val.csv") as f:
        row = list(csv.DictReader(f))[-1]
    with open(Path(out) / "train.csv") as f:
        logged = list(csv.DictReader(f))
    row["s_per_step"] = (float(logged[-1]["seconds"]) - float(logged[0]["seconds"])) / max(
        1, int(logged[-1]["step"]) - int(logged[0]["step"]))
    return row


def border(run: str) -> list[float]:
    """kodim01's mean bits per latent position at distance 0, 1, 2, ... from the latent's edge."""
    import torch

    from gaacnn.diagnostics import _test_time_likelihoods, bits_by_border_distance
    from gaacnn.figures import load_kodak_tensor

    torch.set_num_threads(1)
    bits = -torch.log2(_test_time_likelihoods(model_of(run), load_kodak_tensor(0))["y"][0]).sum(0)
    return bits_by_border_distance(bits).tolist()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("start", help="a checkpoint of the trunk")
    ap.add_argument("--trunk", default=TRUNK, help="the trunk whose recipe the cooldowns take (gaacnn.trunks)")
    ap.add_argument("--steps", type=int, default=1200, help="each cooldown's length")
    ap.add_argument("--lmbda", type=float, help="the cooldowns' lambda (default: the trunk's)")
    ap.add_argument("--out", default="runs/cooldown-patch")
    args = ap.parse_args()
    from gaacnn.trunks import TRUNKS

    args.lmbda = args.lmbda or TRUNKS[args.trunk].lmbda
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "33554432")  # glibc keeps its memory: 13-19 % a step
    os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", "4294967296")
    runs = {arm: str(Path(args.out) / f"{args.trunk}-{arm}-{args.lmbda}-{args.steps}") for arm in ARMS}
    n = len(ARMS)
    # One thread each, side by side; spawned, so that each process starts with the malloc settings above.
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
        rows = list(pool.map(cool, [args.trunk] * n, [args.start] * n, runs.values(), [args.lmbda] * n,
                             [args.steps] * n, runs))
        coded = list(pool.map(kodak, runs.values()))
        rings = list(pool.map(border, runs.values()))
    print(f"# {args.trunk}: {args.steps}-step cooldowns at lambda {args.lmbda} from {args.start}")
    print("batch x patch  s/step  CID22-valid loss  bpp    PSNR   Kodak bpp  PSNR dB  g_s(y) dB")
    for arm, row, k in zip(runs, rows, coded):
        print(f"{arm:13s}  {row['s_per_step']:6.3f}  {float(row['loss']):16.5f}  {float(row['bpp']):.3f}  "
              f"{float(row['psnr']):.2f}  {k['bpp']:9.3f}  {k['psnr-rgb']:7.2f}  {k['ceiling']:9.2f}")
    print("# kodim01: mean bits per latent position at distance 0, 1, 2, ... from the edge")
    for arm, ring in zip(runs, rings):
        print(f"{arm:13s}  " + " ".join(f"{v:.0f}" for v in ring))


if __name__ == "__main__":
    main()
