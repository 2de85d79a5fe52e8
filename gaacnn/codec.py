"""Image <-> bytes with a trained model: padding, entropy coding, and the .gaac container.

image (any size) -> pad to a multiple of 64 (replicate) -> model.compress -> strings -> .gaac bytes
.gaac bytes -> header checks (pixel limit) -> model.decompress -> symbol digest check -> crop -> image

Never a wrong image: a file for other weights is refused (fingerprint); a decoder whose floating
point gives other CDFs than the encoder's (another device kind, BLAS or torch) decodes other
symbols, and the digest of the symbols in the header (format v2) refuses it.
"""

from __future__ import annotations

import platform

import torch
import torch.nn.functional as F
from compressai.ops import compute_padding

from .bitstream import BitstreamError, Header, pack, unpack
from .errors import GaacnnError
from .rans_guard import guarded
from .registry import describe
from .weights import WeightsError, weights_fingerprint

PAD_MULTIPLE = 64
# The largest image a file may ask the decoder for, unless the caller raises it (``max_pixels``,
# ``gaacnn decompress --max-pixels``): 8K UHD (7680 x 4320, 33.2 Mpixel) fits; the header's
# 32-bit height and width would otherwise let 300 bytes ask for terabytes.
MAX_PIXELS = 40_000_000


def _preset_name(desc: dict) -> str:
    return desc["preset"] if desc["arch"] == "gaacnn" else f"N{desc['N']}M{desc['M']}"


def encode(model, x: torch.Tensor) -> bytes:
    """(1, 3, H, W) in [0, 1] -> the bytes of a .gaac file."""
    if x.dim() != 4 or x.size(0) != 1 or x.size(1) != 3:
        raise ValueError("encode takes one RGB image shaped (1, 3, H, W)")
    h, w = x.shape[-2:]
    pad, _ = compute_padding(h, w, min_div=PAD_MULTIPLE)
    device = next(model.parameters()).device
    x_pad = F.pad(x.to(device), pad, mode="replicate")
    with torch.inference_mode(), guarded(model, encoding=True) as digest:
        out = model.compress(x_pad)
    desc = describe(model)
    header = Header(
        arch=desc["arch"], preset=_preset_name(desc), context=bool(desc.get("context", False)),
        fingerprint=weights_fingerprint(model), height=h, width=w, z_shape=tuple(out["shape"]),
        symbols=digest.digest(), writer=coder_identity(device),
    )
    return pack(header, [out["strings"][0][0], out["strings"][1][0]])


def coder_identity(device: torch.device) -> str:
    """Who computes the CDFs: device kind, CPU architecture and torch (written into each file)."""
    kind = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu {platform.machine()}"
    return f"{kind}, torch {torch.__version__}"


def read_header(data: bytes) -> Header:
    return unpack(data)[0]


def check_model(model, header: Header) -> None:
    """Refuse to decode with a model other than the one that encoded (never a wrong image)."""
    desc = describe(model)
    ours = (desc["arch"], _preset_name(desc), bool(desc.get("context", False)))
    theirs = (header.arch, header.preset, header.context)
    if ours != theirs:
        raise WeightsError(
            f"the file was encoded with {theirs[0]} preset {theirs[1]} (context={theirs[2]}), "
            f"but the weights are {ours[0]} preset {ours[1]} (context={ours[2]})"
        )
    if weights_fingerprint(model) != header.fingerprint:
        raise WeightsError(
            "the file was encoded with different weights of the same configuration "
            f"(fingerprint {header.fingerprint.hex()}, these weights {weights_fingerprint(model).hex()})"
        )


def decode(model, data: bytes, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    """Bytes of a .gaac file -> (1, 3, H, W) reconstruction in [0, 1] (float, not yet rounded)."""
    return decode_full(model, data, max_pixels)["x_hat"]


def check_size(header: Header, max_pixels: int = MAX_PIXELS) -> None:
    """Refuse, before allocating anything, an image over the pixel limit or a latent shape that does
    not follow from the image size."""
    if header.height * header.width > max_pixels:
        raise BitstreamError(
            f"file declares a {header.width}x{header.height} image, over the limit of {max_pixels:,} pixels "
            "(raise it with --max-pixels, or max_pixels=, if the file is trusted)"
        )
    pad, _ = compute_padding(header.height, header.width, min_div=PAD_MULTIPLE)
    ph = header.height + pad[2] + pad[3]
    pw = header.width + pad[0] + pad[1]
    if header.z_shape != (ph // PAD_MULTIPLE, pw // PAD_MULTIPLE):
        raise BitstreamError("file header is inconsistent (latent shape vs image size): corrupted")


def decode_full(model, data: bytes, max_pixels: int = MAX_PIXELS) -> dict:
    """Like :func:`decode`, also returning the decoded latents ``y_hat`` (for bit-exactness checks)."""
    header, sections = unpack(data)
    check_model(model, header)
    check_size(header, max_pixels)
    _, unpad = compute_padding(header.height, header.width, min_div=PAD_MULTIPLE)
    try:
        with torch.inference_mode(), guarded(model, encoding=False) as digest:
            out = model.decompress([[sections[0]], [sections[1]]], header.z_shape)
    except BitstreamError as exc:
        raise BitstreamError(f"{exc}{_who(model, header)}") from None
    except GaacnnError:
        raise
    except Exception as exc:  # whatever crafted streams make the network or coder raise: our error
        raise BitstreamError(f"entropy decoding failed ({exc.__class__.__name__}): corrupted file") from None
    if header.symbols is not None and digest.digest() != header.symbols:
        raise BitstreamError(f"the decoded symbols differ from the encoded ones{_who(model, header)}")
    return {"x_hat": F.pad(out["x_hat"], unpad).cpu(), "y_hat": out.get("y_hat")}


def _who(model, header: Header) -> str:
    """Why a well-formed file may still decode to other symbols, with who wrote it and who reads it."""
    if header.version < 2:
        return ""
    here = coder_identity(next(model.parameters()).device)
    return (f". The file is corrupted, or this decoder computes other probabilities than its encoder "
            f"(written by: {header.writer or 'unknown'}; decoding on: {here}): decode on the kind of device "
            "and software that encoded it")
