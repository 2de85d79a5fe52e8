"""Weights files: inference-only state dicts with the model description, checksums, fingerprints.

A weights file is a ``torch.save`` dict: {"format": "gaacnn-weights", "version": 1,
"model": build_model kwargs, "state_dict": float tensors in half precision where requested
(without the entropy-coder tables and constructor constants), "meta": training facts}.
Version 2 adds "int8": {name: (int8 tensor, float32 scale per slice of dim 0)} for the large
weight tensors, taken out of "state_dict" (``precision="int8"``: half the size of float16, so
that 16 models fit the tree a GPU machine accepts; its cost in dB is measured, not assumed).
``load_model`` rebuilds the model, restores float32, and rebuilds the entropy coder tables
(CompressAI ``update``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from compressai.models import CompressionModel
from torch import Tensor

from .errors import GaacnnError
from .registry import build_model, describe

FORMAT = "gaacnn-weights"
# Entropy-coder tables that CompressAI's ``update()`` derives from the parameters: not stored in
# weights files (about 20 % of a small model's file), rebuilt by ``load_model``.
DERIVED = ("._quantized_cdf", "._offset", "._cdf_length", ".scale_table")
# Constants the constructor sets (lower bounds, GDN pedestals, the factorized prior's target, the
# context model's mask): not stored either. Files written before they were left out hold them in
# half precision, where the likelihood bound 1e-9 became 0 (an infinite rate in training):
# ``load_model`` keeps those stored values (same fingerprints and bitstreams as when the files were
# evaluated), a fine-tune (``load_into``) always takes the model's own.
CONSTANTS = (".bound", ".pedestal", ".target", ".scale_bound", ".mask")


class WeightsError(GaacnnError):
    """Weights file missing, unreadable, or not matching its checksum / the bitstream."""


def weights_fingerprint(model: torch.nn.Module) -> bytes:
    """8 bytes identifying the parameter values (written into every compressed file)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if tensor.is_floating_point():
            h.update(name.encode())
            h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return h.digest()[:8]


PRECISIONS = ("float32", "float16", "int8")
INT8_MIN_SIZE = 1024  # smaller tensors (biases, GDN betas, the factorized prior) stay float16


def quantize_int8(weight: Tensor) -> tuple[Tensor, Tensor]:
    """Symmetric 8-bit codes with one float32 scale per slice of dim 0 (an output channel of a
    convolution, an input channel of a transposed one): ``weight ~ codes * scale``."""
    flat = weight.detach().float().reshape(weight.shape[0], -1)
    scale = (flat.abs().amax(dim=1) / 127).clamp_min(1e-12)
    codes = torch.round(flat / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return codes.reshape(weight.shape), scale


def dequantize_int8(codes: Tensor, scale: Tensor) -> Tensor:
    return (codes.float().reshape(codes.shape[0], -1) * scale[:, None]).reshape(codes.shape)


def save_weights(model: CompressionModel, path: str | Path, meta: dict | None = None,
                 precision: str = "float16") -> str:
    """Write inference weights; returns the file's SHA-256. ``precision``: see ``PRECISIONS``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    state, int8 = {}, {}
    for k, v in model.state_dict().items():
        if k.endswith(DERIVED + CONSTANTS):
            continue
        v = v.detach().cpu()
        if precision == "int8" and v.is_floating_point() and v.dim() >= 2 and v.numel() >= INT8_MIN_SIZE:
            int8[k] = quantize_int8(v)
        else:
            state[k] = v.half() if precision != "float32" and v.is_floating_point() else v
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": FORMAT, "version": 2 if int8 else 1, "model": describe(model), "state_dict": state,
                **({"int8": int8} if int8 else {}), "meta": meta or {}}, tmp)
    tmp.replace(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read(path: str | Path, sha256: str | None = None) -> dict:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    data = path.read_bytes()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise WeightsError(f"{path}: SHA-256 does not match the manifest; the file is corrupted or replaced")
    try:
        import io

        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    except Exception as exc:
        raise WeightsError(f"{path}: not a readable weights file ({exc.__class__.__name__})") from None
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        return obj
    if isinstance(obj, dict) and "model" in obj and "config" in obj:  # a training checkpoint
        cfg = obj["config"]
        return {"model": {"arch": cfg["arch"], "preset": cfg["preset"], "context": cfg["context"]},
                "state_dict": obj["model"], "meta": {"checkpoint_step": obj["step"]}}
    raise WeightsError(f"{path}: not a gaacnn weights file")


def _float32(obj: dict) -> dict:
    """The float32 state dict of a read file: float16 widened, int8 codes times their scales."""
    state = {k: v.float() if v.is_floating_point() else v for k, v in obj["state_dict"].items()}
    state.update({k: dequantize_int8(codes, scale) for k, (codes, scale) in obj.get("int8", {}).items()})
    return state


def load_state(path: str | Path) -> dict:
    """Float32 state dict of a weights file or training checkpoint."""
    return _float32(_read(path))


def complete_state(model: CompressionModel, state: dict, own_constants: bool = True) -> dict:
    """Add what weights files leave out (coder tables, constants) from ``model``'s own state;
    ``own_constants`` also replaces stored constants (see ``CONSTANTS``)."""
    for k, v in model.state_dict().items():
        if (k.endswith(DERIVED) and k not in state) or (k.endswith(CONSTANTS) and (own_constants or k not in state)):
            state[k] = v
    return state


def load_into(model: CompressionModel, path: str | Path, strict: bool = True) -> None:
    """Load a weights file or training checkpoint into ``model`` (the start of a fine-tune)."""
    try:
        model.load_state_dict(complete_state(model, load_state(path)), strict=strict)
    except RuntimeError as exc:
        raise WeightsError(f"{path}: weights do not fit the model: {str(exc)[:200]}") from None


def load_model(path: str | Path, sha256: str | None = None, device: str = "cpu") -> CompressionModel:
    """Rebuild, load and prepare a model for coding (eval mode, CDF tables updated)."""
    obj = _read(path, sha256)
    desc = dict(obj["model"])
    model = build_model(desc.pop("arch"), **desc)
    try:
        model.load_state_dict(complete_state(model, _float32(obj), own_constants=False))
    except RuntimeError as exc:
        raise WeightsError(f"{path}: weights do not fit the model {obj['model']}: {str(exc)[:200]}") from None
    model.update(force=True)
    model.meta = obj.get("meta", {})
    return model.to(device).eval()
