"""Rate-distortion evaluation with real bitstreams (paper Sec. IV-B).

images -> encode to bytes -> bpp = 8 * len(bytes) / pixels -> decode -> round to 8 bits ->
PSNR (RGB), MS-SSIM (RGB) and MS-SSIM in dB; encode/decode seconds. One row per image,
dataset means per RD point, results in CompressAI's JSON layout. Runs are cached under
``results/cache`` (committed, so later runs and sessions reuse them; ``$GAACNN_CACHE`` overrides it)
keyed on weights checksum, data checksums, code version and settings.
"""

from __future__ import annotations

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


def cached(key_parts: dict, compute):
    """Return the cached value for these inputs, or compute and store it."""
    key = hashlib.sha256(json.dumps({**key_parts, "code": __version__}, sort_keys=True).encode()).hexdigest()
    path = CACHE_DIR / f"{key[:32]}.json"
    if path.exists():
        return json.loads(path.read_text())
    value = compute()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value))
    tmp.replace(path)
    return value


def evaluate_model(model, weights_sha: str, label: str, images: list[Image8], dataset: str,
                   progress: bool = True) -> dict:
    """One learned model = one RD point (cached)."""
    enc, dec = _model_codec(model)
    return cached(
        {"kind": "model", "weights": weights_sha, "data": _data_key(dataset, images)},
        lambda: _point(run_point(enc, dec, images, label, progress)),
    )


def evaluate_codec(codec, images: list[Image8], dataset: str, progress: bool = True) -> list[dict]:
    """A classical codec over its quality sweep (each point cached)."""
    points = []
    for q in codec.qualities:
        point = cached(
            {"kind": "codec", "codec": codec.name, "q": q, "data": _data_key(dataset, images)},
            lambda q=q: _point(run_point(lambda im: codec.encode(im, q), codec.decode, images,
                                         f"{codec.name} q={q}", progress)),
        )
        point["quality"] = q
        points.append(point)
    return points


def _point(rows: list[dict]) -> dict:
    return {"rows": rows, "mean": mean_row(rows)}
