"""Command line: ``gaacnn compress|decompress|train|data ...`` (also ``python -m gaacnn``).

Errors a user can fix are printed as one line on stderr with exit status 2; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .errors import GaacnnError

SAME_DEVICE = ("cpu (default) or cuda; decode on the kind of device that encoded: GAACNN's entropy "
               "parameters differ between CPU and CUDA kernels (a file from the other kind is refused)")


def _cmd_compress(args) -> None:
    from . import manifest
    from .codec import encode
    from .images import read_image

    x, notes = read_image(args.image)
    for note in notes:
        print(f"gaacnn: note: {args.image}: {note}", file=sys.stderr)
    model = manifest.load(args.weights, device=args.device)
    t0 = time.time()
    data = encode(model, x)
    _write_bytes(Path(args.out), data)
    bpp = 8 * len(data) / (x.shape[-1] * x.shape[-2])
    print(f"{args.out}: {len(data)} bytes, {bpp:.4f} bpp, {time.time() - t0:.2f} s")


def _write_bytes(path: Path, data: bytes) -> None:
    if not path.parent.exists():
        raise GaacnnError(f"output folder does not exist: {path.parent}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _cmd_decompress(args) -> None:
    from . import manifest
    from .codec import MAX_PIXELS, check_size, decode, read_header
    from .images import write_png

    max_pixels = MAX_PIXELS if args.max_pixels is None else args.max_pixels
    path = Path(args.file)
    if not path.is_file():
        raise GaacnnError(f"no such file: {path}")
    data = path.read_bytes()
    header = read_header(data)
    check_size(header, max_pixels)
    weights = args.weights
    if weights is None:
        entry = manifest.by_fingerprint(header.fingerprint)
        if entry is None:
            raise GaacnnError(
                f"{path} was encoded with weights that are not shipped (fingerprint "
                f"{header.fingerprint.hex()}); pass them with --weights"
            )
        weights = entry["name"]
    model = manifest.load(weights, device=args.device)
    t0 = time.time()
    x_hat = decode(model, data, max_pixels=max_pixels)
    write_png(x_hat, args.out)
    print(f"{args.out}: {header.width}x{header.height}, {time.time() - t0:.2f} s")


def _cmd_train(args) -> None:
    import os

    import torch
    import torch.distributed as dist

    from .train import TrainConfig, train
    from .weights import save_weights

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():  # under torchrun
        dist.init_process_group("nccl" if torch.cuda.is_available() and args.device != "cpu" else "gloo")

    cfg = TrainConfig(
        out=args.out, arch=args.arch, preset=args.preset, context=not args.no_context, metric=args.metric,
        lmbda=args.lmbda, steps=args.steps, batch=args.batch, patch=args.patch, lr=args.lr,
        clip=args.clip, warmup=args.warmup, ste=args.ste, decay=args.decay, init_optimizer=args.init_optimizer,
        device=args.device, seed=args.seed, val_every=args.val_every, ckpt_every=args.ckpt_every,
        init=args.init, threads=args.threads, max_minutes=args.max_minutes, log_every=args.log_every,
        model_mode=args.model_mode, train_set=args.train_set, val_images=args.val_images,
    )
    result = train(cfg, resume=args.resume, progress=not args.no_progress)
    if dist.is_initialized():
        rank = dist.get_rank()
        dist.destroy_process_group()
        if rank:
            return
    if result["finished"]:
        sha = save_weights(result["model"], Path(cfg.out) / "weights.pth",
                           meta={"steps": result["step"], "wall_seconds": round(result["elapsed"], 1),
                                 "history": result["history"]})
        print(f"weights: {Path(cfg.out) / 'weights.pth'} (sha256 {sha[:12]}...)")
    print(f"stopped at step {result['step']}; last validation: {result['val']}")


def result_labels(names: list[str]) -> list[str]:
    """The name each evaluated model's results carry (and their file): a manifest name whole
    (``gaacnn-small-mse-0.0035``: its decimal point is no file extension), a weights file's name
    without .pth / .pt; files that would share a name get their folder's name in front, so no two
    models write the same results file."""
    def label(name: str, parents: int) -> str:
        path = Path(name)
        if not path.is_file():
            return name
        stem = path.name.removesuffix(".pth").removesuffix(".pt")
        return "-".join([*path.resolve().parent.parts[len(path.resolve().parent.parts) - parents:], stem])

    labels = [label(n, 0) for n in names]
    for depth in (1, 2, 3):
        clashes = {x for x in labels if labels.count(x) > 1}
        labels = [label(n, depth) if x in clashes else x for n, x in zip(names, labels)]
    if len(set(labels)) < len(labels):
        raise GaacnnError(f"the same weights are named twice: {', '.join(names)}")
    return labels


def _cmd_evaluate(args) -> None:
    import json

    from . import manifest
    from .data import dataset_paths
    from .evaluate import evaluate_model, load_images, results_json
    from .manifest import sha256_of

    labels = result_labels(args.weights)
    paths = [Path(p) for p in args.images] if args.images else dataset_paths(args.dataset)
    images = load_images(paths[: args.limit] if args.limit else paths, skip_bad=args.skip_bad,
                         warn=lambda m: print(f"gaacnn: warning: {m}", file=sys.stderr))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, label in zip(args.weights, labels):
        model = manifest.load(name, device=args.device)
        sha = sha256_of(name)
        point = evaluate_model(model, sha, label, images, args.dataset)
        result = results_json(label, f"{label} on {args.dataset} ({len(images)} of {len(paths)} images)",
                              [point], {"weights_sha256": sha, "dataset": args.dataset, "images": len(images)})
        target = out / f"{label}_{args.dataset}.json"
        target.write_text(json.dumps(result, indent=1))
        m = point["mean"]
        print(f"{label}: {m['bpp']:.4f} bpp, {m['psnr-rgb']:.2f} dB PSNR, {m['ms-ssim-db-rgb']:.2f} dB MS-SSIM, "
              f"enc {m['encoding_time']:.2f} s, dec {m['decoding_time']:.2f} s -> {target}")


def _cmd_data(args) -> None:
    from .data import fetch_all

    counts = fetch_all(args.sets or None)
    for name, n in counts.items():
        print(f"{name}: {n} files verified")


def build_parser() -> argparse.ArgumentParser:
    """The command line; it imports nothing heavy (each command imports torch when it runs), so that
    ``gaacnn --help`` and a usage error answer at once."""
    from .train_config import TrainConfig

    p = argparse.ArgumentParser(prog="gaacnn", description="GAACNN learned image codec (Tang et al., TCSVT 2022)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compress", help="image -> .gaac file")
    c.add_argument("image")
    c.add_argument("out")
    c.add_argument("--weights", required=True, help="weights file, or a name from weights/manifest.json")
    c.add_argument("--device", default="cpu", help=SAME_DEVICE)
    c.set_defaults(func=_cmd_compress)

    d = sub.add_parser("decompress", help=".gaac file -> PNG")
    d.add_argument("file")
    d.add_argument("out")
    d.add_argument("--weights", help="default: the shipped weights whose fingerprint the file names")
    d.add_argument("--device", default="cpu", help=SAME_DEVICE)
    d.add_argument("--max-pixels", type=int,
                   help="refuse files that declare a larger image (default: gaacnn.codec.MAX_PIXELS, which 8K fits)")
    d.set_defaults(func=_cmd_decompress)

    t = sub.add_parser("train", help="train a model (see gaacnn.train_config.TrainConfig)")
    t.add_argument("--out", required=True)
    t.add_argument("--arch", default="gaacnn", choices=["gaacnn", "mshp"])
    t.add_argument("--preset", default="small")
    t.add_argument("--no-context", action="store_true", help="hyperprior only (no 3-D context model)")
    t.add_argument("--metric", default="mse", choices=["mse", "ms-ssim"])
    t.add_argument("--lmbda", type=float, default=0.013)
    t.add_argument("--steps", type=int, default=10000, help="the run's budget (a trunk: raise it and --resume)")
    t.add_argument("--batch", type=int, default=TrainConfig.batch)
    t.add_argument("--patch", type=int, default=TrainConfig.patch)
    t.add_argument("--lr", type=float, default=TrainConfig.lr)
    t.add_argument("--clip", type=float, default=TrainConfig.clip, help="main-gradient norm limit (0: off)")
    t.add_argument("--warmup", type=int, default=TrainConfig.warmup, help="steps of linear warm-up")
    t.add_argument("--decay", type=float, default=TrainConfig.decay,
                   help="fraction of the budget, at its end, over which lr falls linearly: 0 for a trunk, "
                        "1 for a cooldown")
    t.add_argument("--device", default="auto")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--val-every", type=int, default=1000)
    t.add_argument("--ckpt-every", type=int, default=250)
    t.add_argument("--init", help="start from these weights or checkpoint (a cooldown, another lambda)")
    t.add_argument("--ste", action="store_true",
                   help="g_s trains on the rounded latent with a straight-through gradient (the authors' code)")
    t.add_argument("--init-optimizer", action="store_true",
                   help="with a checkpoint as --init, continue its Adam moments (a cooldown of a trunk)")
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("--max-minutes", type=float, default=0.0)
    t.add_argument("--log-every", type=int, default=10)
    t.add_argument("--train-set", default="cid22-train")
    t.add_argument("--val-images", type=int, default=41)
    t.add_argument("--model-mode", default="train", choices=["train", "eval"],
                   help="'eval' trains without quantisation noise or dropout (for the DDP equivalence test)")
    t.add_argument("--no-progress", action="store_true")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="rate-distortion of models on a data set, from real bitstreams")
    e.add_argument("weights", nargs="+", help="weights files or manifest names")
    e.add_argument("--dataset", default="kodak")
    e.add_argument("--images", nargs="*", help="evaluate these files instead of a registered data set")
    e.add_argument("--limit", type=int, help="only the first N images")
    e.add_argument("--skip-bad", action="store_true", help="skip unreadable images (said, and counted)")
    e.add_argument("--out", default="build/results")
    e.add_argument("--device", default="cpu")
    e.set_defaults(func=_cmd_evaluate)

    g = sub.add_parser("data", help="locate, download where possible, and verify the data sets")
    g.add_argument("sets", nargs="*", help="default: all")
    g.set_defaults(func=_cmd_data)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("gaacnn: interrupted", file=sys.stderr)
        return 130
    except (GaacnnError, OSError, ValueError, MemoryError) as exc:
        if args.debug:
            raise
        print(f"gaacnn: error: {exc}", file=sys.stderr)
        return 2
    return 0
