"""The paper's evaluation regenerated: RD curves (Figs. 4-5), BD tables (Tables I-II),
runtime table and visual comparison. Every curve carries its source: "measured here"
(with what produced it) or "published" (with the file it was read from).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt  # no backend is forced: notebooks show figures inline
import numpy as np
import pandas as pd

from .anchors import available_codecs
from .bd import bd_quality, bd_rate, ms_ssim_db
from .data import dataset_paths, locate
from .evaluate import evaluate_codec, evaluate_model, load_images, results_json

PUBLISHED = {  # CompressAI's published Kodak tables used in the figures
    "kodak": {
        "VTM (published, CompressAI)": "rd-anchors/compressai/kodak/vtm.json",
        "BPG 4:4:4 (published, CompressAI)": "rd-anchors/compressai/kodak/bpg_444_x265_ycbcr.json",
        "JPEG (published, CompressAI)": "rd-anchors/compressai/kodak/jpeg.json",
        "Minnen 2018 mean-scale (published, CompressAI)":
            "rd-anchors/compressai/kodak/compressai-mbt2018-mean_mse_cuda.json",
        "Cheng 2020 attention (published, CompressAI)":
            "rd-anchors/compressai/kodak/compressai-cheng2020-attn_mse_cuda.json",
    },
}
PAPER_GAACNN = {
    "kodak": {"mse": "rd-anchors/gaacnn-paper/kodak_mse.json", "ms-ssim": "rd-anchors/gaacnn-paper/kodak_ms-ssim.json"},
    "tecnick": {"mse": "rd-anchors/gaacnn-paper/tecnick_mse.json",
                "ms-ssim": "rd-anchors/gaacnn-paper/tecnick_ms-ssim.json"},
}
PUBLISHED_IMAGES = {"kodak": 24, "tecnick": 100}  # the image sets the published means are over
PAPER_TABLE = {"kodak": "rd-anchors/gaacnn-paper/table_kodak_vs_jpeg.csv",
               "tecnick": "rd-anchors/gaacnn-paper/table_tecnick_vs_jpeg.csv"}


def _curve(label: str, results: dict, source: str, produced_by: str) -> dict:
    res = dict(results)
    if "ms-ssim-db-rgb" not in res and "ms-ssim-rgb" in res:
        res["ms-ssim-db-rgb"] = list(ms_ssim_db(res["ms-ssim-rgb"]))
    order = np.argsort(res["bpp"])
    clean = {k: [float(np.asarray(v, dtype=float)[i]) for i in order] for k, v in res.items()
             if isinstance(v, list) and len(v) == len(order)}
    return {"label": label, "source": source, "produced_by": produced_by, **clean}


def published_curves(dataset: str) -> list[dict]:
    """CompressAI's tables and the authors' GAACNN points for a data set (Kodak or Tecnick)."""
    curves = []
    for label, rel in PUBLISHED.get(dataset, {}).items():
        curves.append(_curve(label, json.loads(locate(rel).read_text())["results"], "published", rel))
    for metric, rel in PAPER_GAACNN.get(dataset, {}).items():
        label = f"GAACNN {metric} (published, authors, {PUBLISHED_IMAGES[dataset]} images)"
        curves.append(_curve(label, json.loads(locate(rel).read_text())["results"], "published", rel))
    return curves


def measured_codec_curves(dataset: str, images, codecs: list[str] | None = None, progress=True,
                          warn=print, points: int | None = None) -> list[dict]:
    """Live codec curves; ``points`` keeps that many qualities spread over each sweep (smoke runs)."""
    from dataclasses import replace

    curves = []
    for codec in available_codecs(codecs, warn=warn):
        if points and points < len(codec.qualities):
            idx = np.linspace(0, len(codec.qualities) - 1, points).round().astype(int)
            codec = replace(codec, qualities=tuple(codec.qualities[i] for i in idx))
        rd_points = evaluate_codec(codec, images, dataset, progress)
        res = results_json(codec.label, codec.label, rd_points, {})["results"]
        curves.append(_curve(f"{codec.label} (measured here)", res, "measured here",
                             f"{codec.name} qualities {list(codec.qualities)} on {len(images)} {dataset} images"))
    return curves


def family_label(family: str, members: list[dict]) -> str:
    """'control mshp mse (measured here, 50718 steps, 2.3 CPU-h, 3.4 h untracked wall)': what a family's
    training cost, on every table and plot, so a comparison (the ablation) states both sides' steps and
    CPU-hours (issue 20). The largest member's numbers (a ladder's cooldowns differ by minutes); the
    untracked wall time is the chains' before checkpoints recorded their own history."""
    steps = sorted({e["steps"] for e in members})
    span = f"{steps[0]}" if len(steps) == 1 else f"{steps[0]}-{steps[-1]}"
    parts = [f"{span} steps"]
    cpu, gpu = (max(e.get(key, 0.0) for e in members) for key in ("cpu_hours", "gpu_hours"))
    untracked = max(e.get("untracked_wall_seconds", 0.0) for e in members) / 3600
    parts += [f"{cpu:.1f} CPU-h"] if cpu else []
    parts += [f"{gpu:.2f} GPU-h"] if gpu else []
    parts += [f"{untracked:.1f} h untracked wall"] if untracked else []
    return f"{family} (measured here, {', '.join(parts)})"


def measured_model_curves(dataset: str, images, entries: list[dict], load, progress=True) -> list[dict]:
    """Group manifest entries into families (arch/preset/metric) and evaluate each as one RD curve."""
    families: dict[str, list[dict]] = {}
    for e in entries:
        families.setdefault(e["family"], []).append(e)
    curves = []
    for family, members in sorted(families.items()):
        points = [evaluate_model(load(e["name"]), e["sha256"], e["name"], images, dataset, progress)
                  for e in members]
        res = results_json(family, family, points, {})["results"]
        steps = sorted({e["steps"] for e in members})
        desc = (f"{members[0]['model']} trained here, {members[0]['metric']}, lambdas "
                f"{sorted(e['lambda'] for e in members)}, steps {steps}, {members[0]['train_set']}")
        curve = _curve(family_label(family, members), res, "measured here", desc)
        curve["entries"] = {e["name"]: p["mean"] for e, p in zip(members, points)}
        curves.append(curve)
    return curves


def images_for(dataset: str, limit: int | None = None, skip_bad: bool = False, crop: int | None = None):
    """The first ``limit`` images of a set; ``crop`` keeps a centre crop (smoke runs only)."""
    paths = dataset_paths(dataset)
    images = load_images(paths[:limit] if limit else paths, skip_bad=skip_bad)
    if crop:
        for im in images:
            h, w = im.array.shape[:2]
            top, left = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
            im.array = np.ascontiguousarray(im.array[top:top + crop, left:left + crop])
            im.name = f"{im.name}[crop{crop}]"
    return images


def bd_table(curves: list[dict], anchor_label: str, method: str = "cubic") -> pd.DataFrame:
    """BD-rate / BD-PSNR / BD-rate(MS-SSIM) / BD-MSSSIM of every curve against the anchor."""
    anchor = next(c for c in curves if c["label"] == anchor_label)
    rows = []
    for c in curves:
        if c is anchor:
            continue
        row = {"method": c["label"], "source": c["source"]}
        for col, (metric, fn) in {
            "mse_bd_rate_pct": ("psnr-rgb", bd_rate), "bd_psnr_db": ("psnr-rgb", bd_quality),
            "msssim_bd_rate_pct": ("ms-ssim-db-rgb", bd_rate), "bd_msssim_db": ("ms-ssim-db-rgb", bd_quality),
        }.items():
            try:
                row[col] = round(fn(anchor["bpp"], anchor[metric], c["bpp"], c[metric], method), 3)
            except (KeyError, ValueError):
                row[col] = np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def paper_table(dataset: str) -> pd.DataFrame:
    df = pd.read_csv(locate(PAPER_TABLE[dataset]))
    df.insert(1, "source", "published (paper)")
    return df


def table_figure(df: pd.DataFrame, formats: tuple[str, ...], title: str):
    """A table as a figure that holds nothing else: columns as wide as their longest entry, headers
    wrapped at underscores, no margin around the table, rows measured here shaded, blanks for
    missing values."""
    import textwrap

    cells = [[("" if isinstance(v, float) and np.isnan(v) else (f"{v:{fmt}}" if isinstance(v, float) else str(v)))
              for v, fmt in zip(row, formats)] for row in df.itertuples(index=False)]
    headers = [textwrap.fill(str(c).replace("_", " "), 12) for c in df.columns]
    chars = [max([len(line) for line in h.splitlines()] + [len(row[i]) for row in cells]) + 2
             for i, h in enumerate(headers)]
    char_w, row_h, line_h = 0.075, 0.22, 0.15  # inches, at 8 pt
    header_h = line_h * max(h.count("\n") + 1 for h in headers) + 0.08
    width, height = char_w * sum(chars), header_h + row_h * len(cells)
    fig = plt.figure(figsize=(width, height + 0.3))
    ax = fig.add_axes((0, 0, 1, height / (height + 0.3)))
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=headers, cellLoc="left", bbox=[0, 0, 1, 1])
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    measured = [i for i, row in enumerate(cells) if any("measured here" in v for v in row)]
    for (r, c), cell in table.get_celld().items():
        cell.set_width(chars[c] / sum(chars))
        cell.set_height((header_h if r == 0 else row_h) / height)
        cell.set_linewidth(0.3)
        cell.PAD = 0.8 / chars[c]  # about one character of padding, whatever the column's width
        if r == 0:
            cell.set_text_props(weight="bold")
            cell.set_facecolor("#e8e8e8")
        elif r - 1 in measured:
            cell.set_facecolor("#eef4fb")
    fig.text(0.005, 1 - 0.2 / (height + 0.3), title, fontsize=9, va="center")
    return fig


def write_table(df: pd.DataFrame, out_stem: Path, title: str) -> list[Path]:
    """CSV, Markdown and a rendered PNG of a table."""
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    csv_path, md_path, png_path = (out_stem.with_suffix(s) for s in (".csv", ".md", ".png"))
    df.to_csv(csv_path, index=False)
    formats = tuple("g" if c == "lambda" else ".3f" for c in df.columns)  # lambdas span 0.0005 to 220
    note = ""
    if any(c.startswith(("bd_", "mse_bd", "msssim_bd")) for c in df.columns):
        note = ("\nnan: no BD value: the curves do not overlap, have too few points, or one family's "
                "quality does not rise with its rate (a dominated point, which BD cannot integrate), or the "
                "cubic fit falls inside the overlap (a curve that flattens at its top; the _pchip columns "
                "still answer).\n")
    md_path.write_text(f"# {title}\n\n" + df.to_markdown(index=False, floatfmt=formats) + "\n" + note)
    fig = table_figure(df, formats, title)
    fig.savefig(png_path, dpi=150, bbox_inches="tight", pad_inches=0.05)
    plt.close(fig)
    return [csv_path, md_path, png_path]


def curve_style(label: str, source: str) -> dict:
    """One look per method, the same in every figure: our GAACNN in blues, the control in oranges
    (MS-SSIM-trained lighter, GPU-trained dashed), classical codecs thin and grey, other published
    curves grey and dashed, and the authors' GAACNN as bold red stars drawn last."""
    low = label.lower()
    if "published, authors" in low:
        return dict(color="#d62728", ls="-", marker="*", ms=9, lw=2.2, zorder=10)
    if source != "measured here":
        return dict(color="#9e9e9e", ls="--", marker="^", ms=3, lw=0.9, zorder=2)
    ours = low.startswith("gaacnn") or low.startswith("control")
    if not ours:
        markers = {"jpeg (": "s", "jpeg 2000": "D", "webp": "v", "avif": "P", "hevc": "X", "jpeg xl": "h"}
        marker = next((m for k, m in markers.items() if k in low), "o")
        return dict(color="#616161", ls="-", marker=marker, ms=3, lw=0.8, zorder=3)
    blues, oranges = ("#08306b", "#4292c6"), ("#a63603", "#fd8d3c")
    shade = (blues if low.startswith("gaacnn") else oranges)[1 if "ms-ssim" in low else 0]
    return dict(color=shade, ls="--" if " gpu " in f" {low} " else "-", marker="o", ms=4, lw=1.8, zorder=6)


def plot_rd(curves: list[dict], metric: str, path: Path, title: str, max_bpp: float = 1.0):
    """One RD plot on the paper's axes (up to ``max_bpp``, quality range of what is shown), with two
    legends: what was measured here and what is published. Saved to ``path``; returns the figure
    (a notebook shows it inline; close it elsewhere)."""
    fig, ax = plt.subplots(figsize=(9, 5.5))
    shown = [c for c in curves if metric in c]
    shown.sort(key=lambda c: curve_style(c["label"], c["source"])["zorder"])
    handles = {"measured here": [], "published": []}
    lows, highs = [], []
    for curve in shown:
        bpp, q = np.asarray(curve["bpp"]), np.asarray(curve[metric])
        (line,) = ax.plot(bpp, q, label=curve["label"], **curve_style(curve["label"], curve["source"]))
        handles["measured here" if curve["source"] == "measured here" else "published"].append(line)
        inside = q[bpp <= max_bpp]
        if inside.size:
            lows.append(inside.min())
            highs.append(inside.max())
    ax.set_xlabel("bits per pixel (from file sizes)")
    ax.set_ylabel({"psnr-rgb": "PSNR RGB (dB)", "ms-ssim-db-rgb": "MS-SSIM RGB (dB)"}[metric])
    ax.set_xlim(0, max_bpp)
    if lows:
        ax.set_ylim(np.floor(min(lows)) - 0.5, np.ceil(max(highs)) + 0.5)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    legends = []
    for anchor, (group, lines) in zip((1.0, 0.45), handles.items()):
        if lines:
            legends.append(ax.legend(handles=lines, title=group, fontsize=7, title_fontsize=8, loc="upper left",
                                     bbox_to_anchor=(1.01, anchor), frameon=False))
    for legend in legends[:-1]:  # a new legend replaces the axes' last one: keep the earlier ones too
        ax.add_artist(legend)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight", bbox_extra_artists=legends)
    return fig


def machine() -> str:
    """This machine in a few words, for tables whose numbers depend on it."""
    import os
    import platform

    import torch

    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"


def runtime_table(entries: list[dict], load, images, codec_names: list[str] | None = None,
                  threads: int = 1) -> pd.DataFrame:
    """Encode / decode seconds per image, every row timed now, in this one run, on ``threads`` threads:
    the highest-rate model of each family and each available classical codec at its middle quality
    (the cached RD timings were measured at different times, under different loads)."""
    import torch

    from .anchors import available_codecs
    from .evaluate import _model_codec, run_point

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        top = {}
        for e in entries:
            if e["family"] not in top or e["lambda"] > top[e["family"]]["lambda"]:
                top[e["family"]] = e
        timed = [(f"{fam} ({e['name']})", *_model_codec(load(e["name"]))) for fam, e in sorted(top.items())]
        for codec in available_codecs(codec_names, warn=lambda m: None):
            q = codec.qualities[len(codec.qualities) // 2]
            timed.append((f"{codec.label} (setting {q})", lambda img, c=codec, q=q: c.encode(img, q), codec.decode))
        rows = []
        for label, enc, dec in timed:
            run = run_point(enc, dec, images, label, progress=False)
            rows.append({"method": label, "encode_s_per_image": float(np.mean([r["encoding_time"] for r in run])),
                         "decode_s_per_image": float(np.mean([r["decoding_time"] for r in run])),
                         "bpp": float(np.mean([r["bpp"] for r in run]))})
    finally:
        torch.set_num_threads(before)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- models per profile
def profile_entries(profile: str) -> tuple[list[dict], callable]:
    """Manifest entries to evaluate and a loader. Smoke: random-weight tiny models (saved under build/)."""
    from . import manifest

    if profile != "smoke":
        entries = manifest.entries()
        if not entries:
            raise RuntimeError("no shipped weights in weights/manifest.json: run `make train` first")
        return entries, manifest.load
    import torch

    from .model import GAACNN
    from .weights import load_model, save_weights

    folder = Path(__file__).resolve().parent.parent / "build" / "smoke-weights"
    entries = []
    for ctx in (True, False):
        for seed in range(4):
            torch.manual_seed(seed)
            model = GAACNN("tiny", context=ctx).eval()
            name = f"tiny-random-{'ctx' if ctx else 'hyp'}-{seed}"
            sha = save_weights(model, folder / f"{name}.pth")
            entries.append({"name": name, "sha256": sha, "family": f"GAACNN tiny random {'ctx' if ctx else 'hyp'}",
                            "model": "gaacnn tiny (random weights, smoke)", "metric": "mse", "lambda": seed,
                            "steps": 0, "train_set": "none", "file": str(folder / f"{name}.pth")})
    paths = {e["name"]: e["file"] for e in entries}
    return entries, lambda name: load_model(paths[name])


def demo_model(profile: str):
    """One model for the teaching notebooks: the shipped GAACNN with the most steps, or a random tiny one."""
    entries, load = profile_entries(profile)
    gaacnn = [e for e in entries if "gaacnn" in e["model"]] or entries
    best = max(gaacnn, key=lambda e: (e["steps"], e["lambda"]))
    return load(best["name"]), best


def load_kodak_tensor(index: int = 0, size: int | None = None):
    """Kodak image ``index`` as (1, 3, H, W) in [0, 1], optionally centre-cropped to size x size."""
    import torch

    img = images_for("kodak", limit=index + 1)[index].array
    if size:
        h, w = img.shape[:2]
        img = img[(h - size) // 2:(h + size) // 2, (w - size) // 2:(w + size) // 2]
    return torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255


def textured_crop(image: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` x ``size`` window with the most gradient energy (texture is where
    codecs differ; a flat sky shows nothing)."""
    grey = image.astype(np.float64).mean(2)
    energy = np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1]
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    h, w = energy.shape
    step = max(8, size // 8)
    best, where = -1.0, (0, 0)
    for top in range(0, max(1, h - size + 1), step):
        for left in range(0, max(1, w - size + 1), step):
            total = (integral[top + size, left + size] - integral[top, left + size] - integral[top + size, left]
                     + integral[top, left]) if top + size <= h and left + size <= w else 0.0
            if total > best:
                best, where = total, (top, left)
    return where


def visual_comparison(image, model_candidates: list[tuple[str, object]], codec_names: list[str],
                      path: Path, size: int = 128) -> Path:
    """One image decoded by the models and by classical codecs at the same bpp as the first model (each
    codec's setting searched on this image), shown as a textured crop enlarged with nearest-neighbour
    (no smoothing hides the artefacts), beside the whole original with the crop boxed."""
    import torch
    from matplotlib.patches import Rectangle

    from .anchors import CODECS
    from .codec import decode, encode
    from .evaluate import quality
    from .images import to_uint8

    ref = image.array
    h, w = ref.shape[:2]
    size = min(size, h, w)
    top, left = textured_crop(ref, size)
    panels = [("original", ref, None, None)]
    target = None
    x = torch.from_numpy(ref.copy()).permute(2, 0, 1)[None].float() / 255
    for label, model in model_candidates:
        data = encode(model, x)
        rec = to_uint8(decode(model, data))
        bpp = 8 * len(data) / (h * w)
        target = target or bpp
        panels.append((label, rec, bpp, quality(ref, rec)["psnr-rgb"]))
    for name in codec_names:
        codec = CODECS[name]
        if not codec.available():
            continue
        lo, hi = min(codec.qualities), max(codec.qualities)
        grid = np.linspace(lo, hi, 25)
        if all(float(q).is_integer() for q in codec.qualities):  # integer settings: every one in the range
            grid = np.arange(int(lo), int(hi) + 1)
        settings = sorted({type(codec.qualities[0])(g) for g in grid})
        best = min((abs(8 * len(codec.encode(ref, q)) / (h * w) - (target or 0.5)), q) for q in settings)
        data = codec.encode(ref, best[1])
        rec = codec.decode(data)
        panels.append((f"{codec.label} setting {best[1]:g}", rec, 8 * len(data) / (h * w),
                       quality(ref, rec)["psnr-rgb"]))
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(2.7 * (len(panels) + 1), 3.1))
    axes = np.atleast_1d(axes)
    axes[0].imshow(ref)
    axes[0].add_patch(Rectangle((left, top), size, size, fill=False, edgecolor="#d62728", lw=1.5))
    axes[0].set_title(f"{image.name}: the crop", fontsize=7)
    axes[0].axis("off")
    for ax, (label, arr, bpp, psnr) in zip(axes[1:], panels):
        ax.imshow(arr[top:top + size, left:left + size], interpolation="nearest")
        ax.set_title(label if bpp is None else f"{label}\n{bpp:.3f} bpp, {psnr:.2f} dB", fontsize=7)
        ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return path


def is_model_curve(curve: dict) -> bool:
    """A learned model measured here (as opposed to a live classical codec or a published table)."""
    return curve["source"] == "measured here" and "trained here" in curve["produced_by"]


def bd_table_both(curves: list[dict], anchor_label: str) -> pd.DataFrame:
    """BD metrics with the cubic fit, plus the same columns from pchip (suffix ``_pchip``)."""
    cubic = bd_table(curves, anchor_label, "cubic")
    pchip = bd_table(curves, anchor_label, "pchip").drop(columns=["source"])
    return cubic.merge(pchip.add_suffix("_pchip").rename(columns={"method_pchip": "method"}), on="method", how="left")


def paper_bd_table(dataset: str, curves: list[dict], anchor_label: str, complete: bool = True) -> pd.DataFrame:
    """Table I / II: the paper's published rows (where it has them), then every curve against the anchor.
    Published curves join the BD rows only when ``complete`` (the anchor measured on the whole set their
    means are over): a 100-image mean against a 1-image JPEG anchor is no comparison."""
    ours = bd_table_both(curves + (published_curves(dataset) if complete else []), anchor_label)
    return pd.concat([paper_table(dataset), ours], ignore_index=True) if dataset in PAPER_TABLE else ours


def _family_key(label: str) -> tuple[str, bool]:
    """'GAACNN small ms-ssim (measured here, ...)' -> ('ms-ssim', False); a 'GPU' family -> (..., True)."""
    from .manifest import is_gpu_family

    return label.split(" (")[0].split()[-1], is_gpu_family(label)


def best_family(curves: list[dict], anchor: dict, arch: str, metric: str) -> dict | None:
    """Of the measured families of ``arch`` ('GAACNN small') trained for ``metric``, CPU-only or
    GPU-continued ('GAACNN small GPU mse'), the one highest above ``anchor`` in BD quality (PSNR for
    MSE, MS-SSIM in dB for MS-SSIM; pchip, which ranks curves the cubic fit refuses): what the paper's
    own number is set beside. None without one that overlaps the anchor."""
    from .bd import bd_quality

    quality = "psnr-rgb" if metric == "mse" else "ms-ssim-db-rgb"
    best, best_score = None, -np.inf
    for c in curves:
        if not (is_model_curve(c) and c["label"].startswith(arch + " ") and _family_key(c["label"])[0] == metric):
            continue
        try:
            score = bd_quality(anchor["bpp"], anchor[quality], c["bpp"], c[quality], "pchip")
        except ValueError:  # no overlap with the anchor, or not a rate-distortion curve
            continue
        if score > best_score:
            best, best_score = c, score
    return best


def ablation_table(curves: list[dict]) -> tuple[pd.DataFrame, str | None]:
    """Each measured GAACNN family against the control family trained the same way (same metric,
    both on CPU or both on GPU), pchip and cubic; one row per pair, with its anchor. A family with
    no such control is left out."""
    models = [c for c in curves if is_model_curve(c)]
    controls = {_family_key(c["label"]): c for c in models if "control" in c["label"] or "mshp" in c["label"]}
    rows = []
    for c in models:
        control = controls.get(_family_key(c["label"]))
        if control is None or c in controls.values():
            continue
        row = bd_table_both([c, control], control["label"]).iloc[[0]].copy()
        row.insert(1, "anchor", control["label"])
        rows.append(row)
    if not rows:
        return pd.DataFrame({"method": [c["label"] for c in models], "note": "needs a control family"}), None
    return pd.concat(rows, ignore_index=True), "the control family trained for the same metric"


def plot_training_logs(entries: list[dict], path: Path, fallback: pd.DataFrame | None = None) -> Path:
    """bpp and PSNR during training (weights/logs), one row per arch; fine-tunes are drawn from the
    step they started at, so chained runs continue their parent's curve (notebook 04)."""
    from .manifest import WEIGHTS_DIR

    logs = []
    for e in entries:
        log_path = WEIGHTS_DIR / e.get("train_log", "missing")
        if e.get("train_log") and log_path.exists():
            offset = e["steps"] - e.get("finetune_steps", 0) if e.get("finetune_steps") else 0
            logs.append(("control" if "mshp" in e["model"] else "GAACNN", e["name"], offset, pd.read_csv(log_path)))
    if not logs and fallback is not None:
        logs = [("demo", "demo run", 0, fallback)]
    rows = sorted({r for r, *_ in logs}) or ["none"]
    fig, axes = plt.subplots(len(rows), 2, figsize=(12, 3.3 * len(rows)), squeeze=False)
    for arch, name, offset, df in logs:
        ax_bpp, ax_psnr = axes[rows.index(arch)]
        smooth = dict(window=max(1, len(df) // 40), min_periods=1)
        line, = ax_bpp.plot(df["step"] + offset, df["bpp"].rolling(**smooth).mean(), lw=1, label=name)
        ax_psnr.plot(df["step"] + offset, df["psnr"].rolling(**smooth).mean(), lw=1, color=line.get_color())
    for r, (ax_bpp, ax_psnr) in zip(rows, axes):
        ax_bpp.set(title=f"{r}: training bpp (from likelihoods)", xlabel="step (from the base run's start)",
                   ylabel="bpp")
        ax_psnr.set(title=f"{r}: training PSNR (dB)", xlabel="step (from the base run's start)", ylabel="dB")
        ax_bpp.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def plot_bd_integrals(anchor: dict, test: dict, metric: str, path: Path):
    """The two Bjontegaard integrals drawn: BD-quality is the area between the fitted curves over the
    common log-rate range divided by its width; BD-rate the area between them over the common quality
    range, as a log-rate difference. Cubic fits solid, pchip dashed. Returns the figure."""
    from .bd import bd_quality, bd_rate, fitted

    fig, (ax_q, ax_r) = plt.subplots(1, 2, figsize=(12, 4.2))
    la, lt = np.log10(anchor["bpp"]), np.log10(test["bpp"])
    qa, qt = np.asarray(anchor[metric]), np.asarray(test[metric])
    for ax, (xa, ya, xt, yt) in ((ax_q, (la, qa, lt, qt)), (ax_r, (qa, la, qt, lt))):
        lo, hi = max(xa.min(), xt.min()), min(xa.max(), xt.max())
        grid = np.linspace(lo, hi, 200)
        for method, ls in (("cubic", "-"), ("pchip", "--")):
            fa, ft = fitted(xa, ya, grid, method), fitted(xt, yt, grid, method)
            ax.plot(grid, fa, ls, color="#616161", lw=1.2, label=f"{anchor['label']} ({method})")
            ax.plot(grid, ft, ls, color="#08306b", lw=1.2, label=f"{test['label']} ({method})")
            if method == "cubic":
                ax.fill_between(grid, fa, ft, color="#4292c6", alpha=0.25)
        ax.plot(xa, ya, "s", color="#616161", ms=4)
        ax.plot(xt, yt, "o", color="#08306b", ms=4)
        ax.axvspan(lo, hi, color="#fff3cd", alpha=0.4, zorder=0)
        ax.grid(alpha=0.3)
    bdq = {m: bd_quality(anchor["bpp"], qa, test["bpp"], qt, m) for m in ("cubic", "pchip")}
    bdr = {m: bd_rate(anchor["bpp"], qa, test["bpp"], qt, m) for m in ("cubic", "pchip")}
    unit = "dB"
    ax_q.set(xlabel="log10 bpp", ylabel=metric, title=f"BD-quality = shaded area / width: {bdq['cubic']:+.2f} {unit} "
             f"(pchip {bdq['pchip']:+.2f})")
    ax_r.set(xlabel=metric, ylabel="log10 bpp", title=f"BD-rate = 10^(area / width) - 1: {bdr['cubic']:+.1f} % "
             f"(pchip {bdr['pchip']:+.1f} %)")
    ax_q.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    return fig


def cpu_hours_at(steps: np.ndarray, segments: list[dict]) -> np.ndarray:
    """CPU core-hours a run had spent by each of ``steps``, from its history's segments (linear within
    a segment; GPU segments add none)."""
    knots_s, knots_h, spent = [0.0], [0.0], 0.0
    for seg in sorted(segments, key=lambda g: g["from_step"]):
        if seg["kind"] == "cpu":
            spent += seg["seconds"] * seg["workers"] / 3600
        knots_s += [seg["from_step"], seg["to_step"]]
        knots_h += [knots_h[-1], spent]
    return np.interp(steps, knots_s, knots_h)


def branched_hours(history: dict) -> float:
    """CPU core-hours of the trunks a trunk began from, where it branched: a widened trunk (``trunks.WIDENED``)
    goes on from its source's hours, so notebook 04 draws it as that trunk's continuation. A run begun
    from shipped weights (a parent without segments) starts at 0, as the hours of the chains before the
    trunks were not recorded."""
    parent = history.get("parent") or {}
    segments = parent.get("segments") or []
    if not segments:
        return 0.0
    return float(cpu_hours_at(np.array([parent["step"]], float), segments)[0]) + branched_hours(parent)


def plot_latent_channel(image, image_name: str, view: dict, rank: int, title: str):
    """Notebook 03's explorer: the image, its bits per latent position summed over channels, and the
    latent channel ranked ``rank`` by bits (0: the costliest; clamped to the model's channels), from
    ``diagnostics.latent_channels``'s ``view``. Returns the figure."""
    c = int(view["order"][min(rank, len(view["order"]) - 1)])
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    axes[0].imshow(image[0].permute(1, 2, 0))
    axes[0].axis("off")
    axes[0].set_title(image_name)
    total = view["bits"].sum(0)
    fig.colorbar(axes[1].imshow(total, cmap="inferno"), ax=axes[1])
    axes[1].set_title(f"{title}: {total.sum():.0f} bits in all")
    fig.colorbar(axes[2].imshow(view["y_hat"][c], cmap="coolwarm"), ax=axes[2])
    axes[2].set_title(f"channel {c} (rank {rank + 1}): {view['bits'][c].sum():.0f} bits")
    for ax in axes[1:]:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def gpu_stretches(segments: list[dict]) -> list[dict]:
    """A run's GPU segments, adjacent ones merged: where on the CPU-hours axis a trunk trained on a GPU
    (that axis does not move there) and how much (steps, minutes, the machine)."""
    out: list[dict] = []
    for seg in sorted(segments, key=lambda g: g["from_step"]):
        if seg["kind"] == "cpu":
            continue
        if out and out[-1]["to_step"] == seg["from_step"] and out[-1]["hardware"] == seg["hardware"]:
            out[-1].update(to_step=seg["to_step"], seconds=out[-1]["seconds"] + seg["seconds"])
        else:
            out.append({k: seg[k] for k in ("hardware", "from_step", "to_step", "seconds")})
    return out


def plot_trunk_progress(runs: dict[str, Path], path: Path, cooled: dict[str, list[dict]] | None = None):
    """CID22-valid PSNR and loss of each trunk against the CPU core-hours it has had (its own and, for a
    widened trunk, its source trunk's, not its starting weights'): the curve that says what the next
    CPU-hour buys. ``cooled`` (trunk name -> ``trunks.cooled_points``): cooldowns at the trunk's lambda,
    drawn as diamonds at the trunk's CPU-hours where they branched and labelled with their length, the
    trend once the noise of the constant lr is decayed away. A stretch trained on a GPU is a dotted line,
    labelled. Returns the figure."""
    import torch

    cooled = cooled or {}
    fig, (ax_psnr, ax_loss) = plt.subplots(1, 2, figsize=(12, 4))
    for name, run in runs.items():
        ckpt, val = run / "checkpoint.pt", run / "val.csv"
        if not (ckpt.is_file() and val.is_file()):
            continue
        history = torch.load(ckpt, map_location="cpu", weights_only=False).get("history") or {}
        df = pd.read_csv(val)
        if df.empty:
            continue
        segments = history.get("segments", [])
        offset = branched_hours(history)
        hours = offset + cpu_hours_at(df["step"].to_numpy(float), segments)
        style = curve_style(("control " if name.startswith("mshp") else "GAACNN ") + name, "measured here")
        style.update(marker="o", ms=3, lw=1.2)
        ax_psnr.plot(hours, df["psnr"], label=f"{name} (bpp {df['bpp'].iloc[-1]:.3f} at the end)", **style)
        ax_loss.plot(hours, df["loss"], label=name, **style)
        for gpu in gpu_stretches(segments):  # steps that cost no CPU-hours
            x = offset + float(cpu_hours_at(np.array([gpu["from_step"]], float), segments)[0])
            for ax in (ax_psnr, ax_loss):
                ax.axvline(x, color=style.get("color"), ls=":", lw=1)
            ax_loss.annotate(f"{gpu['hardware']}: steps {gpu['from_step']:,}-{gpu['to_step']:,}, "
                             f"{gpu['seconds'] / 60:.1f} min", (x, 1), xycoords=("data", "axes fraction"),
                             fontsize=6, rotation=90, va="top", ha="right")
        points = cooled.get(name, [])
        if points:
            at = [p["trunk_cpu_hours"] for p in points]  # the trunk's own, recorded where it branched
            style.update(marker="D", ms=6, lw=1.0, ls="--")
            ax_psnr.plot(at, [p["psnr"] for p in points], label=f"{name}, cooled down at its lambda", **style)
            ax_loss.plot(at, [p["loss"] for p in points], **style)
            for x, p in zip(at, points):
                ax_loss.annotate(str(p["steps"]), (x, p["loss"]), fontsize=6, xytext=(3, -9),
                                 textcoords="offset points")
    ax_psnr.set(xlabel="CPU core-hours of the trunk", ylabel="CID22-valid PSNR (dB)", title="trunks: quality")
    ax_loss.set(xlabel="CPU core-hours of the trunk", ylabel="CID22-valid loss (lambda 255^2 MSE + bpp)",
                title="trunks: loss (diamonds: cooled down, steps)")
    for ax in (ax_psnr, ax_loss):
        ax.grid(alpha=0.3)
    ax_psnr.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return fig


def entry_points(curves: list[dict]) -> dict[str, dict]:
    """Each evaluated manifest entry's mean RD point, from the model curves that hold them."""
    return {name: mean for c in curves for name, mean in c.get("entries", {}).items()}


def pick_for_comparison(entries: list[dict], points: dict[str, dict], target_bpp: float = 0.5) -> list[dict]:
    """For the visual comparison: the GAACNN MSE model nearest ``target_bpp`` (data-set mean), then the
    control MSE model nearest that GAACNN model's bpp."""
    def nearest(cands: list[dict], bpp: float) -> dict | None:
        return min(cands, key=lambda e: abs(points[e["name"]]["bpp"] - bpp), default=None)

    mse = [e for e in entries if e["metric"] == "mse"] or entries
    ours = nearest([e for e in mse if "gaacnn" in e["model"]], target_bpp)
    control = nearest([e for e in mse if "mshp" in e["model"]], points[ours["name"]]["bpp"] if ours else target_bpp)
    return [e for e in (ours, control) if e is not None]


def final_train_loss(log: Path, rows: int = 10) -> float | None:
    """The training loss a run ended at: the median of the last ``rows`` logged batch losses. One
    logged batch (2 crops at the top rounds) swings several-fold from crop to crop; ``None`` without a log."""
    if not log.is_file():
        return None
    losses = pd.read_csv(log)["loss"].tail(rows)
    return round(float(losses.median()), 4) if len(losses) else None


def weights_table(entries: list[dict], points: dict[str, dict], dataset: str) -> pd.DataFrame:
    """Per shipped model: how it was trained, the training loss it ended at, CID22-valid numbers
    logged by training, and its measured mean on ``dataset`` (real files)."""
    from .manifest import WEIGHTS_DIR

    rows = []
    for e in entries:
        val, p = e.get("validation_cid22_valid", {}), points.get(e["name"], {})
        rows.append({
            "weights": e["name"], "metric": e["metric"], "lambda": e["lambda"], "steps": e["steps"],
            "wall_min": round(e.get("wall_seconds", float("nan")) / 60, 1),
            "train_loss_end": final_train_loss(WEIGHTS_DIR / e.get("train_log", "missing")),
            "cid22_valid_bpp": round(float(val["bpp"]), 4) if val.get("bpp") else None,
            "cid22_valid_psnr": round(float(val["psnr"]), 2) if val.get("psnr") else None,
            f"{dataset}_bpp": round(p["bpp"], 4) if p else None,
            f"{dataset}_psnr": round(p["psnr-rgb"], 2) if p else None,
            f"{dataset}_msssim_db": round(p["ms-ssim-db-rgb"], 2) if p else None,
        })
    return pd.DataFrame(rows)


def profile_curves(profile: str, datasets: tuple[str, ...] = ("kodak", "tecnick", "clic2025"),
                   names: list[str] | None = None, codecs: bool = True,
                   models: bool = True) -> tuple[dict[str, list[dict]], dict[str, list[str]]]:
    """The measured curves of a figure profile per data set (models, then live codecs; cached), and
    the image names each used. Notebook 05 draws them; ``warm`` runs it to fill the cache ahead."""
    from .profiles import FIGURE_PROFILES

    prof = FIGURE_PROFILES[profile]
    entries, load = profile_entries(profile) if models else ([], None)
    if names:
        entries = [e for e in entries if e["name"] in names]
    curves, used = {}, {}
    for dataset in datasets:
        limit = prof.kodak_images if dataset == "kodak" else prof.highres_images
        images = images_for(dataset, limit, crop=prof.crop)
        curves[dataset] = measured_model_curves(dataset, images, entries, load) if entries else []
        if codecs:
            curves[dataset] += measured_codec_curves(dataset, images, points=prof.codec_points)
        used[dataset] = [im.name for im in images]
    return curves, used


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m gaacnn.figures", description="fill the evaluation cache "
                                 "of a figure profile (what notebook 05 reads), e.g. in the background")
    ap.add_argument("command", choices=["warm"])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--datasets", nargs="+", default=["kodak", "tecnick", "clic2025"])
    ap.add_argument("--names", nargs="*", help="manifest entries (default: all)")
    ap.add_argument("--no-codecs", action="store_true")
    ap.add_argument("--no-models", action="store_true")
    args = ap.parse_args(argv)
    profile_curves(args.profile, tuple(args.datasets), args.names, not args.no_codecs, not args.no_models)


if __name__ == "__main__":
    main()
