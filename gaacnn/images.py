"""Reading and writing images, with the input conversions the codec accepts.

Conversions (said once on stderr by the command line, returned as notes by :func:`read_image`):
- grayscale (L, LA, I, I;16, 1) is replicated to three RGB channels;
- an alpha channel (RGBA, LA, PA) is dropped; the codec is RGB only;
- 16-bit samples are rounded to 8 bits (value / 257);
- palette, CMYK, YCbCr and other modes are converted to RGB by Pillow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import GaacnnError


class ImageError(GaacnnError):
    """An input image that cannot be read."""


def _to_rgb8(im: Image.Image) -> tuple[np.ndarray, list[str]]:
    notes = []
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F") or mode.startswith("I;16"):
        arr = np.asarray(im, dtype=np.float64)
        if mode != "F" and arr.max() > 255:
            notes.append("16-bit samples rounded to 8 bits")
            arr = arr / 257.0
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        notes.append("grayscale replicated to RGB")
        return np.repeat(arr[..., None], 3, axis=2), notes
    if "A" in mode or (mode == "P" and "transparency" in im.info):
        notes.append("alpha channel dropped")
    if mode in ("L", "LA", "1"):
        notes.append("grayscale replicated to RGB")
    return np.array(im.convert("RGB")), notes


def _read_16bit_rgb(path: Path) -> np.ndarray | None:
    """48/64-bit PNG or TIFF through imagecodecs (Pillow reads them only as 8-bit)."""
    try:
        import imagecodecs

        arr = imagecodecs.imread(str(path))
    except Exception:
        return None
    if arr.dtype == np.uint16 and arr.ndim == 3 and arr.shape[2] in (3, 4):
        return arr
    return None


def read_image(path: str | Path) -> tuple[torch.Tensor, list[str]]:
    """Image file -> (1, 3, H, W) float tensor in [0, 1], plus the conversions applied."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"no such file: {path}")
    if path.is_dir():
        raise ImageError(f"{path} is a folder, not an image")
    if path.stat().st_size == 0:
        raise ImageError(f"{path} is empty")
    try:
        with Image.open(path) as im:
            im.load()
            arr16 = _read_16bit_rgb(path) if im.mode in ("RGB", "RGBA", "RGBX") else None
            if arr16 is not None:
                notes = ["16-bit samples rounded to 8 bits"]
                if arr16.shape[2] == 4:
                    notes.append("alpha channel dropped")
                arr = np.clip(np.rint(arr16[..., :3] / 257.0), 0, 255).astype(np.uint8)
            else:
                arr, notes = _to_rgb8(im)
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not a recognised image file") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{path}: cannot decode image ({exc})") from None
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"{path}: image has no pixels")
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float().div_(255.0)
    return x.unsqueeze(0), notes


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) in [0, 1] -> (H, W, 3) uint8, rounded as a decoded file would be."""
    if x.dim() == 4:
        x = x[0]
    return x.detach().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()


def write_png(x: torch.Tensor, path: str | Path) -> None:
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise ImageError(f"output folder does not exist: {path.parent}")
    Image.fromarray(to_uint8(x)).save(path, format="PNG")
