"""Bjontegaard metrics (VCEG-M33): BD-rate and BD-quality (BD-PSNR, BD-MSSSIM in dB).

Two interpolations: ``cubic`` (the classic third-order polynomial fit) and ``pchip``
(piecewise-cubic Hermite interpolation, as in later VCEG/JVET practice). Integrals run over
the overlapping quality range (BD-rate) or log-rate range (BD-quality). Negative BD-rate and
positive BD-quality mean the test curve is better than the anchor.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import PchipInterpolator

METHODS = ("cubic", "pchip")


def _prepare(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("rate and quality must be 1-D sequences of the same length")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("rate-distortion points must be finite")
    order = np.argsort(x)
    x, y = x[order], y[order]
    if len(np.unique(x)) != len(x):
        raise ValueError("duplicate points on the integration axis")
    if not (np.diff(y) > 0).all():
        # a family whose quality falls as its rate rises is no rate-distortion curve: the fits
        # (the cubic above all) then give numbers with no meaning, so refuse it
        raise ValueError("quality does not rise with rate along the curve (a dominated point)")
    return x, y


def _integral(x, y, lo: float, hi: float, method: str) -> float:
    """Integral of y(x) over [lo, hi] for the fitted curve through (x, y)."""
    if method == "cubic":
        if len(x) < 4:
            raise ValueError("the cubic fit needs at least 4 points per curve")
        coeffs = np.polyfit(x, y, 3)
        if not _rises(coeffs, lo, hi):
            # points that do rise can still pull a cubic into a dip (a curve that flattens at its top): the
            # integral then counts a stretch where the fitted quality falls as rate rises, and the BD
            # number means nothing (Kodak: a BD-rate of +503 % for a family 2.5 dB above JPEG)
            raise ValueError("the cubic fit falls inside the overlap, so its BD number has no meaning (use pchip)")
        poly = np.polyint(coeffs)
        return float(np.polyval(poly, hi) - np.polyval(poly, lo))
    if method == "pchip":
        if len(x) < 2:
            raise ValueError("pchip needs at least 2 points per curve")
        return float(PchipInterpolator(x, y).integrate(lo, hi))
    raise ValueError(f"unknown method {method!r}; use one of {METHODS}")


def _rises(coeffs: np.ndarray, lo: float, hi: float) -> bool:
    """Whether the cubic with these coefficients rises over all of [lo, hi]: its derivative, a
    quadratic, is positive at both ends and at its turning point when that lies inside."""
    slope = np.polyder(coeffs)
    at = [lo, hi]
    if slope[0] != 0 and lo < -slope[1] / (2 * slope[0]) < hi:
        at.append(-slope[1] / (2 * slope[0]))
    return bool((np.polyval(slope, at) > 0).all())


def _overlap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    lo, hi = max(a.min(), b.min()), min(a.max(), b.max())
    if not lo < hi:
        raise ValueError(
            f"the two curves do not overlap ([{a.min():.4g}, {a.max():.4g}] vs [{b.min():.4g}, {b.max():.4g}])"
        )
    return lo, hi


def bd_rate(anchor_rate, anchor_quality, test_rate, test_quality, method: str = "cubic") -> float:
    """Average rate difference (%) of ``test`` against ``anchor`` at equal quality."""
    qa, la = _prepare(anchor_quality, np.log10(np.asarray(anchor_rate, dtype=float)))
    qt, lt = _prepare(test_quality, np.log10(np.asarray(test_rate, dtype=float)))
    lo, hi = _overlap(qa, qt)
    diff = (_integral(qt, lt, lo, hi, method) - _integral(qa, la, lo, hi, method)) / (hi - lo)
    return float((10**diff - 1) * 100)


def bd_quality(anchor_rate, anchor_quality, test_rate, test_quality, method: str = "cubic") -> float:
    """Average quality difference (dB for PSNR / MS-SSIM-dB) of ``test`` at equal rate."""
    la, qa = _prepare(np.log10(np.asarray(anchor_rate, dtype=float)), anchor_quality)
    lt, qt = _prepare(np.log10(np.asarray(test_rate, dtype=float)), test_quality)
    lo, hi = _overlap(la, lt)
    return float((_integral(lt, qt, lo, hi, method) - _integral(la, qa, lo, hi, method)) / (hi - lo))


def fitted(x, y, grid, method: str = "cubic") -> np.ndarray:
    """The fitted curve through (x, y) (the one the integrals use) evaluated on ``grid``: for drawing."""
    x, y = _prepare(x, y)
    if method == "cubic":
        return np.polyval(np.polyfit(x, y, 3), grid)
    if method == "pchip":
        return PchipInterpolator(x, y)(grid)
    raise ValueError(f"unknown method {method!r}; use one of {METHODS}")


def ms_ssim_db(ms_ssim) -> np.ndarray:
    """MS-SSIM in dB: -10 log10(1 - MS-SSIM)."""
    return -10 * np.log10(1 - np.asarray(ms_ssim, dtype=float))
