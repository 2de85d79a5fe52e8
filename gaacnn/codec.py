"""Image <-> bytes with a trained model: padding, entropy coding, and the .gaac container.

image (any size) -> pad to a multiple of 64 (replicate) -> model.compress -> strings -> .gaac bytes
.gaac bytes -> header checks -> model.decompress -> crop to the original size -> image
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from compressai.ops import compute_padding

from .bitstream import BitstreamError, Header, pack, unpack
from .weights import WeightsError, weights_fingerprint
from .zoo import describe

PAD_MULTIPLE = 64


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
    with torch.inference_mode():
        out = model.compress(x_pad)
    desc = describe(model)
    header = Header(
        arch=desc["arch"], preset=_preset_name(desc), context=bool(desc.get("context", False)),
        fingerprint=weights_fingerprint(model), height=h, width=w, z_shape=tuple(out["shape"]),
    )
    return pack(header, [out["strings"][0][0], out["strings"][1][0]])


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


def decode(model, data: bytes) -> torch.Tensor:
    """Bytes of a .gaac file -> (1, 3, H, W) reconstruction in [0, 1] (float, not yet rounded)."""
    return decode_full(model, data)["x_hat"]


def decode_full(model, data: bytes) -> dict:
    """Like :func:`decode`, also returning the decoded latents ``y_hat`` (for bit-exactness checks)."""
    header, sections = unpack(data)
    if len(sections) != 2:
        raise BitstreamError("file has an unexpected number of sections: corrupted")
    check_model(model, header)
    pad, unpad = compute_padding(header.height, header.width, min_div=PAD_MULTIPLE)
    ph = header.height + pad[2] + pad[3]
    pw = header.width + pad[0] + pad[1]
    if header.z_shape != (ph // PAD_MULTIPLE, pw // PAD_MULTIPLE):
        raise BitstreamError("file header is inconsistent (latent shape vs image size): corrupted")
    try:
        with torch.inference_mode():
            out = model.decompress([[sections[0]], [sections[1]]], header.z_shape)
    except (RuntimeError, ValueError, IndexError) as exc:
        raise BitstreamError(f"entropy decoding failed ({exc.__class__.__name__}): corrupted file") from None
    return {"x_hat": F.pad(out["x_hat"], unpad).cpu(), "y_hat": out.get("y_hat")}
