"""Encode/decode time of one Kodak-sized image: GAACNN small (both configurations) against
CompressAI's MeanScaleHyperprior at the control's size (N=64, M=96), measured side by side; prints ratios.
Also peak memory (RSS) of compressing a 3840x2160 image, each in a fresh process.

    .venv/bin/python benchmarks/codec_speed.py [--repeat 2] [--no-4k]
Random weights (after update()): coding time does not depend on training, only on sizes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch


def build(name: str):
    from gaacnn.zoo import build_model

    torch.manual_seed(0)
    model = {
        "gaacnn-small+context": lambda: build_model("gaacnn", "small", context=True),
        "gaacnn-small-hyperprior": lambda: build_model("gaacnn", "small", context=False),
        CONTROL: lambda: build_model("mshp"),
    }[name]().eval()
    model.update(force=True)
    return model


# The baseline: CompressAI's MeanScaleHyperprior at the size of the ablation control.
CONTROL = "compressai-mshp(N=64,M=96)"
NAMES = ["gaacnn-small+context", "gaacnn-small-hyperprior", CONTROL]


def time_codec(model, x: torch.Tensor, repeat: int) -> tuple[float, float, int]:
    from gaacnn.codec import decode, encode

    enc, dec = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        data = encode(model, x)
        t1 = time.perf_counter()
        decode(model, data)
        enc.append(t1 - t0)
        dec.append(time.perf_counter() - t1)
    return min(enc), min(dec), len(data)


def peak_memory_child(name: str) -> None:
    import resource

    from gaacnn.codec import encode

    model = build(name)
    encode(model, torch.rand(1, 3, 2160, 3840))
    print(json.dumps({"peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-4k", action="store_true")
    ap.add_argument("--child-4k", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_4k:
        return peak_memory_child(args.child_4k)
    torch.manual_seed(0)
    x = torch.rand(1, 3, 512, 768)
    rows = {}
    for name in NAMES:
        rows[name] = time_codec(build(name), x, args.repeat)
    base_enc, base_dec, _ = rows[NAMES[-1]]
    print(f"768x512, best of {args.repeat}, threads={torch.get_num_threads()}")
    print(f"{'model':32s} {'encode s':>9s} {'decode s':>9s} {'x enc':>7s} {'x dec':>7s} {'bytes':>8s}")
    for name, (e, d, n) in rows.items():
        print(f"{name:32s} {e:9.2f} {d:9.2f} {e / base_enc:7.1f} {d / base_dec:7.1f} {n:8d}")
    if not args.no_4k:
        print("peak RSS compressing 3840x2160 (fresh process each):")
        for name in NAMES:
            out = subprocess.run([sys.executable, __file__, "--child-4k", name], capture_output=True, text=True)
            lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
            print(f"  {name:32s} {json.loads(lines[-1])['peak_rss_gib']:.2f} GiB" if lines else f"  {name}: failed")


if __name__ == "__main__":
    main()
