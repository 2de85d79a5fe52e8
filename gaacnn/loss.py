"""Rate-distortion loss (paper Sec. IV-A): ``lambda * D + R`` in CompressAI's scaling.

R = bits of y and z per pixel, from the model's likelihoods. D is 255^2 * MSE (``mse``) or
1 - MS-SSIM (``ms-ssim``). The authors write ``lambda_p * MSE + 0.1 * bpp`` on [0, 1] images,
which is the same optimum as ``lambda_c * 255^2 * MSE + bpp`` with lambda_c = 10 lambda_p / 255^2;
:func:`paper_lambda` converts.
"""

from __future__ import annotations

import math

import torch
from pytorch_msssim import ms_ssim
from torch import Tensor


def paper_lambda(lmbda: float, metric: str) -> float:
    """Authors' lambda -> the lambda of :func:`rate_distortion`."""
    return 10 * lmbda / 255**2 if metric == "mse" else 10 * lmbda


def bits_per_pixel(likelihoods: dict[str, Tensor], num_pixels: int) -> Tensor:
    return sum(-torch.log2(lk).sum() for lk in likelihoods.values()) / num_pixels


def ms_ssim_fitting(x: Tensor, y: Tensor) -> Tensor:
    """MS-SSIM (five scales) with the largest Gaussian window the image size allows.

    pytorch-msssim needs the shorter side above 16 * (window - 1): 160 px for its standard
    11-px window. Smaller training patches (128 px) use a 7-px window; evaluation images
    (Kodak and larger) always get the standard window.
    """
    side = min(x.shape[-2:])
    win = 11
    while win > 3 and side <= 16 * (win - 1):
        win -= 2
    if side <= 16 * (win - 1):
        raise ValueError(f"MS-SSIM needs images larger than {16 * (win - 1)} px, got {side}")
    return ms_ssim(x, y, data_range=1.0, size_average=True, win_size=win)


def rate_distortion(out: dict, x: Tensor, lmbda: float, metric: str = "mse") -> dict[str, Tensor]:
    """Loss terms of one batch: loss, bpp, mse, psnr (and ms-ssim when optimised for it)."""
    n, _, h, w = x.shape
    bpp = bits_per_pixel(out["likelihoods"], n * h * w)
    x_hat = out["x_hat"].float()
    mse = torch.mean((x_hat - x) ** 2)
    terms = {"bpp": bpp, "mse": mse, "psnr": -10 * torch.log10(mse.detach().clamp_min(1e-10))}
    if metric == "mse":
        terms["loss"] = lmbda * 255**2 * mse + bpp
    elif metric == "ms-ssim":
        msssim = ms_ssim_fitting(x_hat.clamp(0, 1), x)
        terms["ms-ssim"] = msssim
        terms["loss"] = lmbda * (1 - msssim) + bpp
    else:
        raise ValueError(f"unknown metric {metric!r}: use 'mse' or 'ms-ssim'")
    return terms


def psnr(mse: float) -> float:
    return -10 * math.log10(max(mse, 1e-10))
