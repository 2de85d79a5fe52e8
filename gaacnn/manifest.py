"""The shipped weights: ``weights/manifest.json`` lists each file with how it was trained.

Each entry: name, file, sha256, fingerprint (hex, as written into .gaac files), model
(build_model kwargs), metric, lambda, steps, patch, batch, train_set, seed (of the last run's crops),
wall_seconds, commit,
and validation numbers. Loading through the manifest verifies the SHA-256.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .weights import WeightsError, load_model

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"


def is_gpu_family(family: str) -> bool:
    """Whether a family ('GAACNN small GPU mse', or a label that starts with it) had GPU steps behind it:
    the ablation pairs such a family only with a control family that had them too."""
    return "GPU" in family.split(" (")[0].split()


def entries(path: Path | None = None) -> list[dict]:
    path = path or MANIFEST
    if not path.exists():
        return []
    return json.loads(path.read_text())["weights"]


def find(name: str) -> dict:
    for e in entries():
        if e["name"] == name:
            return e
    known = ", ".join(e["name"] for e in entries()) or "none shipped"
    raise WeightsError(f"no weights named {name!r} in {MANIFEST} (known: {known})")


def by_fingerprint(fingerprint: bytes) -> dict | None:
    return next((e for e in entries() if e.get("fingerprint") == fingerprint.hex()), None)


def load(name_or_path: str, device: str = "cpu"):
    """A model from a manifest name or from a weights file path (checksum-verified for manifest entries)."""
    looks_like_path = "/" in name_or_path or Path(name_or_path).suffix in (".pth", ".pt")
    if looks_like_path or Path(name_or_path).is_file():
        return load_model(name_or_path, device=device)
    entry = find(name_or_path)
    return load_model(WEIGHTS_DIR / entry["file"], sha256=entry["sha256"], device=device)


def sha256_of(name_or_path: str | Path) -> str:
    """SHA-256 of a weights file, or the manifest's for a shipped name."""
    path = Path(name_or_path)
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return find(str(name_or_path))["sha256"]


def add(entry: dict, path: Path | None = None) -> None:
    """Insert or replace an entry (by name)."""
    path = path or MANIFEST
    items = [e for e in entries(path) if e["name"] != entry["name"]] + [entry]
    items.sort(key=lambda e: e["name"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"weights": items}, indent=2) + "\n")


def remove(name: str, path: Path | None = None) -> dict:
    """Take an entry out of the manifest and delete its weights file and logs; returns the entry."""
    path = path or MANIFEST
    entry = next((e for e in entries(path) if e["name"] == name), None)
    if entry is None:
        raise WeightsError(f"no weights named {name!r} in {path}")
    folder = path.parent
    for rel in (entry["file"], entry.get("train_log"), f"logs/{name}-val.csv"):
        if rel:
            (folder / rel).unlink(missing_ok=True)
    items = [e for e in entries(path) if e["name"] != name]
    path.write_text(json.dumps({"weights": items}, indent=2) + "\n")
    return entry
