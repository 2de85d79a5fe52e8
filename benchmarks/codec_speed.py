"""Encode/decode time of kodim01: GAACNN small (both configurations) against CompressAI's
MeanScaleHyperprior at the control's size (N=64, M=96), measured side by side on one thread;
prints ratios. GAACNN decodes its context model's wavefront with the compiled loop (gaacnn/native.py);
the same model decoded by the Python loop is the last row. ``--profile`` also breaks the wavefront
decode down (steps, time per step, where it goes) for both loops. Also peak memory (RSS) of
compressing a 3840x2160 image, each in a fresh process.

    .venv/bin/python benchmarks/codec_speed.py [--repeat 5] [--profile] [--no-4k] [--random]

The shipped top MSE models where they exist (the width of each CDF follows the trained latent's
range), random weights for the hyperprior-only GAACNN, for all with ``--random``, and a random image
without the data mirror.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch

from gaacnn.native import wavefront_module

SHIPPED = {"gaacnn-small+context": "gaacnn-small-mse-0.1", "compressai-mshp(N=64,M=96)": "mshp-N64M96-mse-0.05"}


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
PYTHON_LOOP = "gaacnn-small+context, Python loop"


def time_codecs(models: dict, x: torch.Tensor, repeat: int) -> dict[str, tuple[float, float, int]]:
    """Best encode and decode seconds and the file size per model, the models taking turns in every
    round (side by side: a slower minute on the machine slows all of them alike)."""
    from gaacnn.codec import decode, encode

    times = {name: ([], []) for name in models}
    sizes = {}
    for _ in range(repeat):
        for name, (model, env) in models.items():
            os.environ.update(env)
            t0 = time.perf_counter()
            data = encode(model, x)
            t1 = time.perf_counter()
            decode(model, data)
            times[name][0].append(t1 - t0)
            times[name][1].append(time.perf_counter() - t1)
            sizes[name] = len(data)
            for key in env:
                os.environ.pop(key)
    return {name: (min(enc), min(dec), sizes[name]) for name, (enc, dec) in times.items()}


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
    """Steps of the wavefront decode, time per step, and the share of its parts: for the compiled loop
    (gaacnn/native.py, what decodes) and for the Python loop it replaces (the reference)."""
    import cProfile
    import os
    import pstats

    from gaacnn.codec import decode, encode, read_header
    from gaacnn.context import wavefront

    data = encode(model, x)
    h, w = (4 * n for n in read_header(data).z_shape)  # y is 4x the hyper-latent z in each direction
    steps = wavefront((model.preset.latent, h, w), model.preset.context_kernel).steps
    for loop in ("compiled", "python"):
        os.environ["GAACNN_NATIVE"] = "1" if loop == "compiled" else "0"
        decode(model, data)  # warm
        prof = cProfile.Profile()
        prof.enable()
        decode(model, data)
        prof.disable()
        stats = pstats.Stats(prof).stats
        total = {f"{fn[0].rsplit('/', 1)[-1]}:{fn[2]}": v[3] for fn, v in stats.items()}
        wave = total.get("model.py:_decode_wavefront", 0.0)
        print(f"{loop} wavefront decode: {steps} steps, {wave:.2f} s, {1000 * wave / steps:.3f} ms per step "
              f"(of a {total.get('codec.py:decode', 0.0):.2f} s decode, profiled; "
              f"g_s {total.get('model.py:synthesize', 0.0):.2f} s)")
        if loop == "python":
            for key, what in [("context.py:entropy_parameters_at", "entropy parameters (context + 1x1x1 net)"),
                              ("context.py:mixture_cdfs", "mixture CDFs"), ("decode_stream", "rANS decode")]:
                seconds = sum(v for k, v in total.items() if key in k)
                print(f"  {what:45s} {seconds:6.2f} s")
    os.environ.pop("GAACNN_NATIVE")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-4k", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--random", action="store_true", help="random weights for every model")
    ap.add_argument("--child-4k", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_4k:
        return peak_memory_child(args.child_4k)
    torch.set_num_threads(1)
    x, what = test_image()
    models = {name: (build(name, args.random), {}) for name in NAMES}
    if wavefront_module() is not None:  # the reference: the same model decoded by the Python loop
        models[PYTHON_LOOP] = (models[NAMES[0]][0], {"GAACNN_NATIVE": "0"})
    rows = time_codecs(models, x, args.repeat)
    base_enc, base_dec, _ = rows[CONTROL]
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
