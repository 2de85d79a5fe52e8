"""Weights files: inference-only state dicts with the model description, checksums, fingerprints.

A weights file is a ``torch.save`` dict: {"format": "gaacnn-weights", "version": 1,
"model": build_model kwargs, "state_dict": float tensors in half precision where requested
(without the entropy-coder tables and constructor constants), "meta": training facts}.
``load_model`` rebuilds the model, restores float32, and rebuilds the entropy coder tables
(CompressAI ``update``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from compressai.models import CompressionModel

from .errors import GaacnnError
from .zoo import build_model, describe

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


def save_weights(model: CompressionModel, path: str | Path, meta: dict | None = None, half: bool = True) -> str:
    """Write inference weights; returns the file's SHA-256."""
    state = {
        k: (v.half() if half and v.is_floating_point() else v).cpu()
        for k, v in model.state_dict().items() if not k.endswith(DERIVED + CONSTANTS)
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": FORMAT, "version": 1, "model": describe(model), "state_dict": state,
                "meta": meta or {}}, tmp)
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


def sha256_of(name_or_path: str | Path) -> str:
    """SHA-256 of a weights file, or the manifest's for a shipped name."""
    path = Path(name_or_path)
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    from . import manifest

    return manifest.find(str(name_or_path))["sha256"]


def _float32(state: dict) -> dict:
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def load_state(path: str | Path) -> dict:
    """Float32 state dict of a weights file or training checkpoint."""
    return _float32(_read(path)["state_dict"])


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
        model.load_state_dict(complete_state(model, _float32(obj["state_dict"]), own_constants=False))
    except RuntimeError as exc:
        raise WeightsError(f"{path}: weights do not fit the model {obj['model']}: {str(exc)[:200]}") from None
    model.update(force=True)
    model.meta = obj.get("meta", {})
    return model.to(device).eval()
