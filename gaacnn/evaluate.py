"""Rate-distortion evaluation with real bitstreams (paper Sec. IV-B).

images -> encode to bytes -> bpp = 8 * len(bytes) / pixels -> decode -> round to 8 bits ->
PSNR (RGB), MS-SSIM (RGB) and MS-SSIM in dB; encode/decode seconds. One row per image,
dataset means per RD point, results in CompressAI's JSON layout. Runs are cached under
``results/cache`` (committed, so later runs and sessions reuse them; ``$GAACNN_CACHE`` overrides it)
keyed on weights checksum, data checksums, settings, and a hash of the code that produces the numbers
(``code_hash``: the model and coding modules, or the classical codecs, the metrics, the library
versions), so that a change there re-measures. Each file keeps what it was measured from, so that
``python -m gaacnn.evaluate verify`` (``make verify-cache``) can re-measure a random sample of rows
and fail on any difference.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pytorch_msssim import ms_ssim
from tqdm.auto import tqdm

from . import __version__
from .data import checksums, load_rgb
from .errors import GaacnnError

CACHE_DIR = Path(os.environ.get("GAACNN_CACHE", Path(__file__).resolve().parent.parent / "results" / "cache"))


@dataclass
class Image8:
    name: str
    array: np.ndarray  # (H, W, 3) uint8


def quality(ref: np.ndarray, rec: np.ndarray) -> dict[str, float]:
    """PSNR and MS-SSIM on 8-bit RGB (MS-SSIM with pytorch-msssim, data range 255)."""
    mse = float(np.mean((ref.astype(np.float64) - rec.astype(np.float64)) ** 2))
    psnr = 10 * math.log10(255**2 / mse) if mse > 0 else 100.0
    a = torch.tensor(ref).permute(2, 0, 1)[None].float()
    b = torch.tensor(rec).permute(2, 0, 1)[None].float()
    if min(ref.shape[:2]) > 160:
        msssim = float(ms_ssim(a, b, data_range=255, size_average=True))
    else:
        msssim = float("nan")  # five-scale MS-SSIM is undefined below 161 px
    db = -10 * math.log10(max(1 - msssim, 1e-10)) if math.isfinite(msssim) else float("nan")
    return {"psnr-rgb": psnr, "ms-ssim-rgb": msssim, "ms-ssim-db-rgb": db}


def load_images(paths: list[Path], skip_bad: bool = False, warn=print) -> list[Image8]:
    """Read every image; a bad one stops the run, or is skipped and said when ``skip_bad``."""
    out = []
    for p in paths:
        try:
            out.append(Image8(Path(p).name, load_rgb(p)))
        except Exception as exc:
            if not skip_bad:
                raise GaacnnError(f"cannot read {p}: {exc} (use --skip-bad to leave it out)") from None
            warn(f"skipping unreadable image {p}: {exc}")
    if len(out) < len(paths):
        warn(f"means are over {len(out)} of {len(paths)} images")
    return out


def _model_codec(model):
    from .codec import decode, encode
    from .images import to_uint8

    def enc(img: np.ndarray) -> bytes:
        return encode(model, torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)

    def dec(data: bytes) -> np.ndarray:
        return to_uint8(decode(model, data))

    return enc, dec


def run_point(enc, dec, images: list[Image8], desc: str, progress: bool = True) -> list[dict]:
    """Encode and decode every image at one RD point; per-image rows."""
    rows = []
    for im in tqdm(images, desc=desc, disable=not progress, leave=False):
        t0 = time.perf_counter()
        data = enc(im.array)
        t1 = time.perf_counter()
        rec = dec(data)
        t2 = time.perf_counter()
        h, w = im.array.shape[:2]
        rows.append({"image": im.name, "bytes": len(data), "bpp": 8 * len(data) / (h * w),
                     **quality(im.array, rec), "encoding_time": t1 - t0, "decoding_time": t2 - t1})
    return rows


def mean_row(rows: list[dict]) -> dict[str, float]:
    keys = ["bpp", "psnr-rgb", "ms-ssim-rgb", "ms-ssim-db-rgb", "encoding_time", "decoding_time"]
    return {k: float(np.nanmean([r[k] for r in rows])) for k in keys}


def results_json(name: str, description: str, points: list[dict], meta: dict) -> dict:
    """CompressAI's result layout: results[metric] is a list over RD points."""
    means = [p["mean"] for p in sorted(points, key=lambda p: p["mean"]["bpp"])]
    results = {k: [m[k] for m in means] for k in means[0]} if means else {}
    return {"name": name, "description": description, "meta": meta, "results": results,
            "per_image": [p["rows"] for p in points]}


def _data_key(dataset: str, images: list[Image8]) -> str:
    table = checksums()
    return hashlib.sha256(
        json.dumps([table.get(f"{dataset}/{im.name}", hashlib.sha256(im.array.tobytes()).hexdigest())
                    for im in images]).encode()
    ).hexdigest()


# The modules whose code turns weights and an image into bytes and a decoded image (a model row), or
# an image into a classical codec's file (a codec row); both add the metrics below.
MODEL_CODE = ("acnn", "attention", "graph", "transforms", "context", "model", "quantization", "bitstream",
              "codec", "rans_guard", "weights", "registry", "presets", "images", "native")
SOURCES = {"model": ("csrc/wavefront.cpp",), "codec": ()}  # compiled code the model rows run
CODEC_CODE = ("anchors", "images")
LIBRARIES = {"model": ("torch", "compressai", "numpy"), "codec": ("PIL", "pillow_heif", "imagecodecs", "numpy")}
MEASURED = ("bytes", "bpp", "psnr-rgb", "ms-ssim-rgb", "ms-ssim-db-rgb")  # what verify compares


@functools.cache
def code_hash(kind: str) -> str:
    """16 hex digits over the source of what produces a ``kind`` ("model" or "codec") row: its
    modules, the metric functions of this module, and the versions of the libraries they call."""
    import importlib
    import inspect

    h = hashlib.sha256()
    for name in MODEL_CODE if kind == "model" else CODEC_CODE:
        h.update(inspect.getsource(importlib.import_module(f"gaacnn.{name}")).encode())
    for fn in (quality, run_point, _model_codec):
        h.update(inspect.getsource(fn).encode())
    for src in SOURCES[kind]:
        h.update((Path(__file__).parent / src).read_bytes())
    for lib in LIBRARIES[kind]:
        h.update(f"{lib}={getattr(importlib.import_module(lib), '__version__', '')}".encode())
    return h.hexdigest()[:16]


def _inputs(dataset: str, images: list[Image8]) -> dict:
    return {"dataset": dataset, "images": [im.name for im in images],
            "image_sha256": [hashlib.sha256(im.array.tobytes()).hexdigest() for im in images]}


def cached(key_parts: dict, compute, inputs: dict | None = None):
    """Return the cached value for these inputs, or compute and store it (with ``inputs``: what
    ``verify`` needs to measure it again)."""
    key_parts = {**key_parts, "code": code_hash(key_parts["kind"])}
    key = hashlib.sha256(json.dumps(key_parts, sort_keys=True).encode()).hexdigest()
    path = CACHE_DIR / f"{key[:32]}.json"
    if path.exists():
        return json.loads(path.read_text())["value"]
    value = compute()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key_parts, "inputs": inputs or {}, "value": value,
                               "gaacnn": __version__}))
    tmp.replace(path)
    return value


def evaluate_model(model, weights_sha: str, label: str, images: list[Image8], dataset: str,
                   progress: bool = True) -> dict:
    """One learned model = one RD point (cached)."""
    enc, dec = _model_codec(model)
    return cached(
        {"kind": "model", "weights": weights_sha, "data": _data_key(dataset, images)},
        lambda: _point(run_point(enc, dec, images, label, progress)),
        _inputs(dataset, images),
    )


def evaluate_codec(codec, images: list[Image8], dataset: str, progress: bool = True) -> list[dict]:
    """A classical codec over its quality sweep (each point cached)."""
    points = []
    for q in codec.qualities:
        point = cached(
            {"kind": "codec", "codec": codec.name, "q": q, "data": _data_key(dataset, images)},
            lambda q=q: _point(run_point(lambda im: codec.encode(im, q), codec.decode, images,
                                         f"{codec.name} q={q}", progress)),
            _inputs(dataset, images),
        )
        point["quality"] = q
        points.append(point)
    return points


def _point(rows: list[dict]) -> dict:
    return {"rows": rows, "mean": mean_row(rows)}


def _live(entry) -> bool:
    """Whether a cache file was written by the current code (older layouts and code hashes are dead)."""
    return isinstance(entry, dict) and "key" in entry and entry["key"]["code"] == code_hash(entry["key"]["kind"])


def _row_codec(entry: dict):
    """(encode, decode) that measured a cache file's rows, or None when it cannot be rebuilt here."""
    key = entry["key"]
    if key["kind"] == "codec":
        from .anchors import CODECS

        codec = CODECS.get(key["codec"])
        if codec is None or not codec.available():
            return None
        return (lambda im: codec.encode(im, key["q"])), codec.decode
    from . import manifest

    found = [e for e in manifest.entries() if e["sha256"] == key["weights"]]
    return _model_codec(manifest.load(found[0]["name"])) if found else None


def verify(sample: int = 8, seed: int | None = None, cache: Path | None = None, progress: bool = True) -> list[str]:
    """Measure ``sample`` random cached rows again (bytes, bpp, PSNR, MS-SSIM; not timings) and
    return one line per difference. A row whose code hash is not the current code's is not checked
    (it is dead: nothing reads it); one whose model or image cannot be rebuilt counts as a difference."""
    import random

    from .data import dataset_paths

    entries = [(f, json.loads(f.read_text())) for f in sorted((cache or CACHE_DIR).glob("*.json"))]
    live = [(f, entry) for f, entry in entries if _live(entry)]
    rows = [(f, entry, i) for f, entry in live for i in range(len(entry["value"]["rows"]))]
    paths_of = functools.cache(lambda dataset: {p.name: p for p in dataset_paths(dataset)} if dataset else {})
    rng = random.Random(seed)
    problems = []
    for f, entry, i in tqdm(rng.sample(rows, min(sample, len(rows))), desc="verify", disable=not progress):
        row, inputs = entry["value"]["rows"][i], entry["inputs"]
        where = f"{f.name} row {i} ({row['image']})"
        coder = _row_codec(entry)
        path = paths_of(inputs.get("dataset", "")).get(row["image"])
        if coder is None or path is None:
            problems.append(f"{where}: cannot rebuild its {'coder' if coder is None else 'image'}")
            continue
        image = Image8(row["image"], load_rgb(path))
        measured_sha = inputs["image_sha256"][inputs["images"].index(row["image"])]
        if hashlib.sha256(image.array.tobytes()).hexdigest() != measured_sha:
            problems.append(f"{where}: the image is not the one measured")
            continue
        again = run_point(*coder, [image], where, progress=False)[0]
        for k in MEASURED:
            same = again[k] == row[k] or (isinstance(row[k], float) and math.isnan(row[k]) and math.isnan(again[k]))
            if not same:
                problems.append(f"{where}: {k} cached {row[k]!r}, measured {again[k]!r}")
    return problems


def prune(cache: Path | None = None) -> list[Path]:
    """Delete cache files no current code can read (older key layouts or code hashes)."""
    gone = []
    for f in sorted((cache or CACHE_DIR).glob("*.json")):
        if not _live(json.loads(f.read_text())):
            f.unlink()
            gone.append(f)
    return gone


def main(argv: list[str] | None = None) -> None:
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m gaacnn.evaluate", description="check the evaluation cache")
    ap.add_argument("command", choices=["verify", "prune"])
    ap.add_argument("--sample", type=int, default=8, help="verify: rows to measure again")
    ap.add_argument("--seed", type=int, help="verify: which rows (default: different each run)")
    args = ap.parse_args(argv)
    if args.command == "prune":
        print(f"removed {len(prune())} cache files that no current code reads")
        return
    problems = verify(args.sample, args.seed)
    for line in problems:
        print(line)
    print(f"verify: {args.sample} rows measured again, {len(problems)} differences")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
