"""Encode/decode time of kodim01: GAACNN small (both configurations) against CompressAI's
MeanScaleHyperprior at the control's size (N=64, M=96), measured side by side on one thread;
prints ratios. ``--profile`` also breaks GAACNN's wavefront decode down (steps, time per step, where
it goes). Also peak memory (RSS) of compressing a 3840x2160 image, each in a fresh process.

    .venv/bin/python benchmarks/codec_speed.py [--repeat 3] [--profile] [--no-4k] [--random]

The shipped top MSE models where they exist (the width of each CDF follows the trained latent's
range), random weights for the hyperprior-only GAACNN, for all with ``--random``, and a random image
without the data mirror.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch

SHIPPED = {"gaacnn-small+context": "gaacnn-small-mse-0.1", "compressai-mshp(N=64,M=96)": "mshp-N64M96-mse-0.0483"}


def build(name: str, random: bool = False):
    from gaacnn import manifest
    from gaacnn.registry import build_model

    if not random and name in SHIPPED:
        return manifest.load(SHIPPED[name])
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


def test_image() -> tuple[torch.Tensor, str]:
    from gaacnn.data import dataset_paths, mirror_root
    from gaacnn.images import read_image

    if mirror_root() is None:
        torch.manual_seed(0)
        return torch.rand(1, 3, 512, 768), "a random 768x512 image"
    return read_image(dataset_paths("kodak")[0])[0], "kodim01 (768x512)"


def profile_wavefront(model, x: torch.Tensor) -> None:
    """Steps of the wavefront decode, time per step, and the share of its parts."""
    import cProfile
    import pstats

    from gaacnn.codec import decode, encode

    data = encode(model, x)
    prof = cProfile.Profile()
    prof.enable()
    decode(model, data)
    prof.disable()
    stats = pstats.Stats(prof).stats
    total = {f"{fn[0].rsplit('/', 1)[-1]}:{fn[2]}": v[3] for fn, v in stats.items()}
    calls = {f"{fn[0].rsplit('/', 1)[-1]}:{fn[2]}": v[1] for fn, v in stats.items()}
    steps = calls.get("model.py:_step_cdfs", 0)
    wave = total.get("model.py:_decode_wavefront", 0.0)
    print(f"wavefront decode: {steps} steps, {wave:.2f} s, {1000 * wave / max(steps, 1):.2f} ms per step "
          f"(of a {total.get('codec.py:decode', 0.0):.2f} s decode, profiled)")
    for key, what in [("context.py:entropy_parameters_at", "entropy parameters (context + 1x1x1 net)"),
                      ("context.py:mixture_cdfs", "mixture CDFs"), ("~:<method 'decode_stream' of "
                      "'compressai.ans.RansDecoder' objects>", "rANS decode")]:
        print(f"  {what:45s} {total.get(key, 0.0):6.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-4k", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--random", action="store_true", help="random weights for every model")
    ap.add_argument("--child-4k", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_4k:
        return peak_memory_child(args.child_4k)
    torch.set_num_threads(1)
    x, what = test_image()
    rows = {}
    for name in NAMES:
        rows[name] = time_codec(build(name, args.random), x, args.repeat)
    base_enc, base_dec, _ = rows[NAMES[-1]]
    weights = "random weights" if args.random else "shipped weights where they exist"
    print(f"{what}, {weights}, best of {args.repeat}, threads={torch.get_num_threads()}")
    print(f"{'model':32s} {'encode s':>9s} {'decode s':>9s} {'x enc':>7s} {'x dec':>7s} {'bytes':>8s}")
    for name, (e, d, n) in rows.items():
        print(f"{name:32s} {e:9.2f} {d:9.2f} {e / base_enc:7.1f} {d / base_dec:7.1f} {n:8d}")
    if args.profile:
        profile_wavefront(build(NAMES[0], args.random), x)
    if not args.no_4k:
        print("peak RSS compressing 3840x2160 (fresh process each):")
        for name in NAMES:
            out = subprocess.run([sys.executable, __file__, "--child-4k", name], capture_output=True, text=True)
            lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
            print(f"  {name:32s} {json.loads(lines[-1])['peak_rss_gib']:.2f} GiB" if lines else f"  {name}: failed")


if __name__ == "__main__":
    main()
