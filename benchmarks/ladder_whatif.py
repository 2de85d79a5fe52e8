"""Where would a ladder of cooldown checkpoints stand in Table II and in the ablation, before shipping it?

Codes Kodak (24 images, real files) with each run's checkpoint, takes them as one family's RD curve, and
prints its BD-PSNR and BD-rate against Pillow JPEG (cubic, as Table II, and pchip) beside the shipped
family it would replace, and the ablation's BD-rate against the other architecture's shipped family of the
same metric (GAACNN against the control). JPEG's and the shipped families' points come from the
evaluation cache (``results/cache``), measured the way ``make paper-figures`` measures them.

    python benchmarks/ladder_whatif.py "GAACNN small mse" runs/a runs/b runs/c runs/d
    python benchmarks/ladder_whatif.py "GAACNN small mse" runs/b runs/c runs/d --shipped gaacnn-small-mse-0.0009

``--shipped``: a shipped model of the family stands in for a rung that has no run (its cached Kodak point).

Results: benchmarks/results/cooldown_patch_kodak.txt (the 256-px ladder).
"""

from __future__ import annotations

import argparse
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from widen_stretch import kodak

RIVAL = {"GAACNN small mse": "control mshp mse", "GAACNN small ms-ssim": "control mshp ms-ssim"}


def _bd(anchor: dict, test: dict) -> dict[str, float]:
    """BD-PSNR (dB) and BD-rate (%) of ``test`` against ``anchor`` (bpp and PSNR lists), both fits."""
    from gaacnn.bd import bd_quality, bd_rate

    out = {}
    for method in ("cubic", "pchip"):
        for name, fn in (("bd_psnr", bd_quality), ("bd_rate", bd_rate)):
            try:
                out[f"{name}_{method}"] = fn(anchor["bpp"], anchor["psnr-rgb"], test["bpp"], test["psnr-rgb"], method)
            except ValueError:  # a fit that dips inside the overlap (gaacnn/bd.py refuses it)
                out[f"{name}_{method}"] = float("nan")
    return out


def _line(label: str, bd: dict[str, float]) -> str:
    return (f"{label:44s} BD-PSNR {bd['bd_psnr_cubic']:+.3f} dB (pchip {bd['bd_psnr_pchip']:+.3f})  "
            f"BD-rate {bd['bd_rate_cubic']:+.1f} % (pchip {bd['bd_rate_pchip']:+.1f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("family", choices=sorted(RIVAL), help="the shipped family the runs would replace")
    ap.add_argument("runs", nargs="+", help="cooldown run folders (config.json + checkpoint.pt), one per lambda")
    ap.add_argument("--shipped", nargs="*", default=[], help="shipped models of the family that stand in for rungs")
    args = ap.parse_args()
    from gaacnn import manifest
    from gaacnn.figures import images_for, measured_codec_curves, measured_model_curves

    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        coded = list(pool.map(kodak, args.runs))
    images = images_for("kodak")
    jpeg = measured_codec_curves("kodak", images, ["jpeg"], progress=False)[0]
    shipped = {c["label"].split(" (")[0]: c for c in measured_model_curves(
        "kodak", images, [e for e in manifest.entries() if e["family"] in (args.family, RIVAL[args.family])],
        manifest.load, progress=False)}
    names = [Path(r).name for r in args.runs] + [f"{n} (shipped, stands in)" for n in args.shipped]
    coded += [{**shipped[args.family]["entries"][n], "ceiling": float("nan")} for n in args.shipped]
    order = sorted(range(len(coded)), key=lambda i: coded[i]["bpp"])
    ladder = {k: [coded[i][k] for i in order] for k in ("bpp", "psnr-rgb")}
    print(f"# Kodak, 24 images, real files; against {jpeg['label']}")
    print("run                                              bpp     PSNR dB  g_s(y) dB")
    for i in order:
        print(f"{names[i]:48s} {coded[i]['bpp']:.4f}  {coded[i]['psnr-rgb']:7.3f}  {coded[i]['ceiling']:9.2f}")
    print(_line("these runs as a ladder, against JPEG", _bd(jpeg, ladder)))
    print(_line(f"shipped {args.family}, against JPEG", _bd(jpeg, shipped[args.family])))
    rival = shipped[RIVAL[args.family]]
    print(_line(f"these runs against shipped {RIVAL[args.family]}", _bd(rival, ladder)))
    print(_line(f"shipped {args.family} against it", _bd(rival, shipped[args.family])))


if __name__ == "__main__":
    main()
