"""The long fuzz run behind tests/test_fuzz.py: N mutated .gaac files of a real image coded with a
shipped model, half random corruption (CRC left alone), half crafted (CRC recomputed); each must be
refused with the project's error or decode to the image its header legitimately asks for.

    .venv/bin/python benchmarks/fuzz_decode.py [--files 10000] [--weights gaacnn-small-mse-0.0035]

Prints the outcome counts (anything but 'refused' and 'same' is a failure), the slowest decode, and
hangs (a decode over --hang seconds, stopped by an alarm). Exit status 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from gaacnn import manifest
from gaacnn.codec import decode, encode
from gaacnn.crafted import judge, mutations, reference
from gaacnn.data import dataset_paths, mirror_root
from gaacnn.images import read_image


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--weights", default="gaacnn-small-mse-0.0035")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=64, help="side of the image crop that is coded")
    ap.add_argument("--hang", type=float, default=30.0, help="seconds after which a decode counts as a hang")
    ap.add_argument("--out", help="also write the summary as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = manifest.load(args.weights)
    if mirror_root() is not None:
        x, _ = read_image(dataset_paths("kodak")[0])
        x = x[..., 100 : 100 + args.size, 200 : 200 + args.size]
    else:
        x = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(args.seed))
    data = encode(model, x)
    ref = reference(model, data)
    signal.signal(signal.SIGALRM, _alarm)
    counts: dict[str, int] = {}
    kinds: dict[str, int] = {}
    slowest, t_start = (0.0, ""), time.time()
    stream = mutations(data, np.random.default_rng(args.seed))
    for _ in tqdm(range(args.files), desc="fuzz", mininterval=5):
        kind, mutated = next(stream)
        kinds[kind.split(":")[0]] = kinds.get(kind.split(":")[0], 0) + 1
        t0 = time.time()
        signal.setitimer(signal.ITIMER_REAL, args.hang)
        try:
            outcome = judge(model, ref, mutated, decode)
        except Hang:
            outcome = "hang"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        slowest = max(slowest, (time.time() - t0, kind))
        key = outcome if outcome in ("refused", "same") else f"{outcome} ({kind})"
        counts[key] = counts.get(key, 0) + 1
    failures = {k: v for k, v in counts.items() if k not in ("refused", "same")}
    summary = {"weights": args.weights, "file_bytes": len(data), "files": args.files, "seed": args.seed,
               "mutations": kinds, "outcomes": counts, "failures": sum(failures.values()),
               "slowest_s": round(slowest[0], 2), "slowest_kind": slowest[1],
               "minutes": round((time.time() - t_start) / 60, 1)}
    print(json.dumps(summary, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
