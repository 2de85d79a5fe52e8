"""Is the latent's width (M) what caps GAACNN small's top rate?

The small preset's top decodes Kodak at about 29.4 dB even from its unrounded latent, however long its
trunk grows, and widening its inner widths to the control's 64 channels (``gaacnn.widen.MEDIUM``, M kept
at 40) did not move that ceiling (docs/training-log.md, fourth to seventh sessions). What is left is
the latent itself: y carries M = 40 numbers per 16 x 16 x 3 pixels, the control's 96.

This probe trains only the transforms, for distortion alone, as a top lambda does (at lambda 0.2 the
rate term is about 3 % of the loss):

    x -> g_a -> y -> y + U(-1/2, 1/2) -> g_s -> x_hat,   loss = MSE(x, x_hat)

side by side from the same trunk checkpoint, one thread each, the same crops in the same order:
``small`` as it is, and its function-preserving widening to M = ``--latent`` (``gaacnn.widen``: the new
latent channels start as fresh outputs of g_a that g_s reads with zero weights, so both arms start at
the same PSNR). The transforms' ceiling on Kodak (24 images, PSNR of g_s(round(y)) and of g_s(y)) is
logged against steps and wall time. If M caps the top, the wide arm's ceiling climbs past the narrow
one's; if not, the two stay level, as the medium widening did.

    python benchmarks/latent_width.py runs/trunk/gaacnn-small-mse-0.013/checkpoint.pt --minutes 80
    python benchmarks/latent_width.py --report                 # the table from the arms' logs
    python benchmarks/latent_width.py CHECKPOINT --sizes --arms 48 56 64 72 80 96   # what each M costs to carry
    python benchmarks/latent_width.py CHECKPOINT --tops 0.1 0.3 --reference runs/trunk/<small's 0.1 rung>

``--tops`` then asks the question with real files: the whole trunk widened to M = 96 (``gaacnn.widen``,
entropy model included) and cooled down as a rung of the shipped MSE ladder at top lambdas.

The PCA line of the report is a linear yardstick: Kodak's 16 x 16 x 3 blocks kept to their first M
principal components. Results: benchmarks/results/latent_width_gaacnn.txt.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

OUT = Path("runs/latent-width")
RESULTS = Path("benchmarks/results/latent_width_gaacnn.txt")
FIELDS = ("step", "minutes", "train_mse", "kodak_psnr_rounded", "kodak_psnr_unrounded")


def transforms_of(checkpoint: str, latent: int | None):
    """(g_a, g_s) of a trunk checkpoint, widened to ``latent`` channels of y when given."""
    import torch

    from gaacnn.model import GAACNN
    from gaacnn.presets import get_preset
    from gaacnn.transforms import AnalysisTransform, SynthesisTransform
    from gaacnn.widen import widened_module_state

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    trained = GAACNN(get_preset(state["config"]["preset"]), context=state["config"].get("context", True))
    trained.load_state_dict(state["model"])
    if latent is None or latent == trained.preset.latent:
        return trained.g_a, trained.g_s
    torch.manual_seed(0)
    wide = replace(trained.preset, name=f"{trained.preset.name}-m{latent}", latent=latent)
    g_a, g_s = AnalysisTransform(wide), SynthesisTransform(wide)
    g_a.load_state_dict(widened_module_state(trained.g_a, g_a))
    g_s.load_state_dict(widened_module_state(trained.g_s, g_s))
    return g_a, g_s


def kodak_ceiling(g_a, g_s, images) -> tuple[float, float]:
    """Mean PSNR (dB) over the images of g_s(round(y)) and of g_s(y): what the transforms can give back."""
    import torch

    from gaacnn.loss import psnr

    rounded, unrounded = [], []
    with torch.no_grad():
        for x in images:
            y = g_a(x)
            for out, latent in ((rounded, torch.round(y)), (unrounded, y)):
                out.append(psnr(float(((g_s(latent).clamp(0, 1) - x) ** 2).mean())))
    return sum(rounded) / len(rounded), sum(unrounded) / len(unrounded)


def arm(name: str, checkpoint: str, latent: int | None, minutes: float, eval_minutes: float,
        lr: float, batch: int, patch: int, seed: int) -> str:
    """Train one arm's transforms for ``minutes`` of wall time; its log is OUT/name/log.csv."""
    import torch

    from gaacnn.data import RandomCrops, dataset_paths, load_rgb

    torch.set_num_threads(1)
    g_a, g_s = transforms_of(checkpoint, latent)
    g_a.train(), g_s.train()
    params = [*g_a.parameters(), *g_s.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    crops = RandomCrops(dataset_paths("cid22-train"), patch=patch, seed=seed)
    kodak = [torch.from_numpy(load_rgb(p)).permute(2, 0, 1)[None].float() / 255 for p in dataset_paths("kodak")]
    folder = OUT / name
    folder.mkdir(parents=True, exist_ok=True)
    log = (folder / "log.csv").open("w", newline="")
    writer = csv.DictWriter(log, FIELDS)
    writer.writeheader()

    def record(step: int, minutes_done: float, train_mse: float) -> None:
        g_a.eval(), g_s.eval()
        rounded, unrounded = kodak_ceiling(g_a, g_s, kodak)
        g_a.train(), g_s.train()
        writer.writerow({"step": step, "minutes": round(minutes_done, 2), "train_mse": round(train_mse, 7),
                         "kodak_psnr_rounded": round(rounded, 3), "kodak_psnr_unrounded": round(unrounded, 3)})
        log.flush()

    record(0, 0.0, float("nan"))
    start, trained_for, step, next_eval, recent = time.time(), 0.0, 0, eval_minutes, []
    while trained_for < minutes:
        tick = time.time()
        x = torch.stack([crops[step * batch + i] for i in range(batch)])
        y = g_a(x)
        x_hat = g_s(y + torch.empty_like(y).uniform_(-0.5, 0.5))
        loss = torch.nn.functional.mse_loss(x_hat, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        for group in opt.param_groups:  # the same 100-step warm-up for both arms (Adam starts fresh in both)
            group["lr"] = lr * min(1.0, (step + 1) / 100)
        opt.step()
        step += 1
        recent = (recent + [loss.item()])[-100:]
        trained_for += (time.time() - tick) / 60  # evaluation time is not training time
        if trained_for >= next_eval or trained_for >= minutes:
            record(step, trained_for, sum(recent) / len(recent))
            next_eval += eval_minutes
    log.close()
    print(f"{name}: {step} steps in {trained_for:.1f} training minutes ({(time.time() - start) / 60:.1f} wall)")
    return name


def pca_yardstick(latents: tuple[int, ...]) -> dict[int, float]:
    """PSNR (dB, over all of Kodak) of its 16 x 16 x 3 blocks kept to their first k principal components."""
    import numpy as np

    from gaacnn.data import dataset_paths, load_rgb
    from gaacnn.loss import psnr

    blocks = []
    for p in dataset_paths("kodak"):
        a = load_rgb(p).astype(np.float64) / 255
        h, w = a.shape[0] // 16 * 16, a.shape[1] // 16 * 16
        blocks.append(a[:h, :w].reshape(h // 16, 16, w // 16, 16, 3).transpose(0, 2, 1, 3, 4).reshape(-1, 768))
    x = np.concatenate(blocks)
    mean = x.mean(0)
    basis = np.linalg.eigh(np.cov((x - mean).T))[1][:, ::-1]
    out = {}
    for k in latents:
        b = basis[:, :k]
        rec = np.clip((x - mean) @ b @ b.T + mean, 0, 1)
        out[k] = psnr(float(((rec - x) ** 2).mean()))
    return out


def recorded_rows(m: int) -> list[dict]:
    """Arm m's rows: its log under runs/, or, where that is gone, the rows an earlier run at the same
    settings wrote to RESULTS (the M = 40 and 96 arms of 2026-12-01)."""
    log = OUT / f"m{m}" / "log.csv"
    if log.is_file():
        return list(csv.DictReader(log.open()))
    rows = []
    for line in RESULTS.read_text().splitlines() if RESULTS.is_file() else []:
        cells = line.split()
        if len(cells) == 6 and cells[0] == f"m{m}" and cells[1].isdigit():
            rows.append(dict(zip(("step", "minutes", *FIELDS[2:]), cells[1:])))
    return rows


def report(latents: tuple[int, ...]) -> str:
    """Every row of each arm, each wider arm against the narrowest at (about) equal steps, and the PCA
    yardstick."""
    lines = ["arm          step  minutes  train MSE   Kodak dB g_s(round y)  g_s(y)"]
    logs = {m: rows for m in sorted(latents) if (rows := recorded_rows(m))}
    for m, rows in logs.items():
        lines += [f"m{m:<9} {int(r['step']):>6} {float(r['minutes']):>8.1f} {float(r['train_mse']):>10.6f}   "
                  f"{float(r['kodak_psnr_rounded']):>10.3f}  {float(r['kodak_psnr_unrounded']):>10.3f}"
                  for r in rows]
    narrowest = min(logs, default=None)
    for m in [m for m in logs if m != narrowest]:
        common = min(int(logs[narrowest][-1]["step"]), int(logs[m][-1]["step"]))  # the furthest both reached
        narrow, wide = (min(logs[k][1:], key=lambda r: abs(int(r["step"]) - common)) for k in (narrowest, m))
        lines.append(f"at about equal steps: m{narrowest} step {narrow['step']}: "
                     f"{float(narrow['kodak_psnr_rounded']):.2f} dB, "
                     f"m{m} step {wide['step']}: {float(wide['kodak_psnr_rounded']):.2f} dB (g_s(round y))")
    lines.append("PCA of Kodak's 16x16x3 blocks, k components: " + ", ".join(
        f"k={k}: {db:.2f} dB" for k, db in pca_yardstick(tuple(sorted(latents))).items()))
    return "\n".join(lines)


def sizes(checkpoint: str, latents: tuple[int, ...]) -> str:
    """What each width of y costs to carry: parameters, the trunk's compact copy in git (``trunks.compact``:
    float32 weights, bfloat16 Adam moments) and a shipped int8 weights file (``gaacnn.release``'s format),
    measured on the trunk widened to each M. The ACNN blocks of g_a's last stage, h_a and h_s are M wide,
    so parameters grow about as M squared."""
    import io
    import tempfile

    import torch

    from gaacnn.model import GAACNN
    from gaacnn.presets import get_preset
    from gaacnn.trunks import compact
    from gaacnn.weights import save_weights
    from gaacnn.widen import widen_checkpoint

    lines = ["M   parameters  compact trunk (git)  shipped int8 file"]
    with tempfile.TemporaryDirectory() as tmp:
        for m in latents:
            preset = replace(get_preset("small"), name=f"small-m{m}", latent=m)
            path = checkpoint if m == get_preset("small").latent else widen_checkpoint(
                checkpoint, preset, Path(tmp) / "wide.pt")
            state = torch.load(path, map_location="cpu", weights_only=False)
            buffer = io.BytesIO()
            torch.save(compact(state), buffer)
            model = GAACNN(preset)
            model.load_state_dict(state["model"])
            model.update(force=True)
            shipped = Path(tmp) / "shipped.pth"
            save_weights(model, shipped, precision="int8")
            params = sum(p.numel() for p in model.parameters())
            lines.append(f"{m:<3} {params / 1e6:>8.2f} M  {buffer.tell() / 1e6:>15.1f} MB  "
                         f"{shipped.stat().st_size / 1e6:>14.2f} MB")
    return "\n".join(lines)


LADDER = "GAACNN small GPU mse"  # the shipped MSE family whose top the widened latent is to lift


def cooled_top(start: str, preset: str, out: str, lmbda: float, steps: int) -> dict:
    """A rung of LADDER's recipe (its crops, lr falling to 1 % over ``steps``, the trunk's Adam moments)
    from ``start`` at ``lmbda``, coded on Kodak with real files (bpp, PSNR, the transforms' ceiling)."""
    from widen_stretch import TRUNK, kodak

    from gaacnn import trunks

    batch, patch = trunks.cooldown_crops(trunks.LADDERS[LADDER])
    if not (Path(out) / "checkpoint.pt").is_file() or not _finished(out, steps):
        trunks.branch(TRUNK, start, out, lmbda, steps, threads=1, preset=preset, batch=batch, patch=patch)
    return kodak(out)


def _finished(run: str, steps: int) -> bool:
    import torch

    return int(torch.load(Path(run) / "checkpoint.pt", map_location="cpu", weights_only=False)["step"]) >= steps


def tops(checkpoint: str, latent: int, lambdas: list[float], steps: int, reference: str | None) -> str:
    """The widened trunk's top rungs beside ``reference`` (small's own rung from the same trunk step)."""
    from gaacnn.widen import widen_checkpoint

    preset = f"small-m{latent}"
    start = OUT / f"{preset}-start.pt"
    if not start.is_file():
        OUT.mkdir(parents=True, exist_ok=True)
        widen_checkpoint(checkpoint, preset, start)
    runs = {f"{preset} lambda {lm:g}": (str(start), preset, str(OUT / f"{preset}-cool-mse-{lm:g}"), lm, steps)
            for lm in lambdas}
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        done = {name: pool.submit(cooled_top, *spec) for name, spec in runs.items()}
        if reference:
            from widen_stretch import kodak

            done[f"small ({reference})"] = pool.submit(kodak, reference)
        rows = {name: job.result() for name, job in done.items()}
    lines = [f"# {steps}-step cooldowns on {LADDER}'s crops from {checkpoint} widened to {preset}; Kodak, real files",
             "model                                                    bpp   PSNR dB  g_s(y) dB"]
    lines += [f"{name:55s} {r['bpp']:6.3f}  {r['psnr-rgb']:7.2f}  {r['ceiling']:9.2f}" for name, r in rows.items()]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", nargs="?", help="a GAACNN trunk checkpoint (runs/trunk/<name>/checkpoint.pt)")
    ap.add_argument("--latent", type=int, default=96, help="the wide arm's M (the control's is 96)")
    ap.add_argument("--arms", type=int, nargs="+", metavar="M",
                    help="the widths to train side by side, one thread each (default: 40 and --latent); "
                         "the report adds arms recorded before (RESULTS)")
    ap.add_argument("--minutes", type=float, default=80.0, help="training wall time per arm")
    ap.add_argument("--eval-minutes", type=float, default=20.0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--patch", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sizes", action="store_true", help="what each width costs to carry (CHECKPOINT widened)")
    ap.add_argument("--report", action="store_true", help="print the table from the arms' logs and stop")
    ap.add_argument("--tops", type=float, nargs="+", metavar="LAMBDA",
                    help="instead of the probe: top rungs of the trunk widened to M = --latent (real files)")
    ap.add_argument("--cool-steps", type=int, default=1200, help="--tops: each rung's cooldown length")
    ap.add_argument("--reference", help="--tops: small's own rung from the same trunk step, coded beside them")
    args = ap.parse_args()
    widths = args.arms or [40, args.latent]  # the arms to train
    shown = tuple(sorted({40, args.latent, *widths}))  # what --report and --sizes show: small's 40 too
    if args.report:
        print(report(shown))
        return
    if not args.checkpoint:
        ap.error("give a trunk checkpoint, or --report")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "33554432")  # glibc keeps its memory: 13-19 % a step
    os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", "4294967296")
    if args.sizes:
        print(sizes(args.checkpoint, shown))
        return
    if args.tops:
        print(tops(args.checkpoint, args.latent, args.tops, args.cool_steps, args.reference))
        return
    arms = {f"m{m}": m for m in widths}  # transforms_of keeps small's own transforms at its M
    common = (args.minutes, args.eval_minutes, args.lr, args.batch, args.patch, args.seed)
    with ProcessPoolExecutor(len(arms), mp_context=multiprocessing.get_context("spawn")) as pool:
        for done in [pool.submit(arm, name, args.checkpoint, m, *common) for name, m in arms.items()]:
            done.result()
    print(report(tuple(sorted({40, *widths}))))


if __name__ == "__main__":
    main()
