"""Data sets: registry, mirror / download, checksum verification, and the training loader.

Where this sits: files on disk -> (verified) paths -> images -> random crops -> g_a ...

Every file of every set is listed with its SHA-256 in ``data/SHA256SUMS`` (the same lines as
the mirror's own list). Files are looked up, in order, in the mirror folder
(``$GAACNN_DATA`` or ``../shared/data`` beside the repository), then in the download cache
(``data/cache``), then downloaded from the original source where one exists; the checksum is
verified either way.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import urllib.request
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .errors import GaacnnError

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKSUMS = REPO_ROOT / "data" / "SHA256SUMS"
CACHE = REPO_ROOT / "data" / "cache"


class DataError(GaacnnError):
    """A data file is missing, unreadable or does not match its checksum."""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    folder: str  # folder inside the mirror, e.g. "kodak"
    description: str
    url: str | None = None  # "{name}" is replaced by the file name
    archive: str | None = None  # a zip holding the files, when there is no per-file address
    notes: str = ""
    suffixes: tuple[str, ...] = field(default=(".png",))
    full_size: int | None = None  # images in the published set, when more than are registered here


DATASETS: dict[str, DatasetSpec] = {
    "kodak": DatasetSpec(
        "kodak", "kodak", "Kodak Lossless True Color Image Suite (24 images, 768x512)",
        url="http://r0k.us/graphics/kodak/kodak/{name}",
    ),
    "tecnick": DatasetSpec(
        "tecnick", "tecnick", "Tecnick TESTIMAGES RGB_OR_1200x1200 (only image 001 is registered)",
        archive="https://sourceforge.net/projects/testimages/files/OLD/OLD_SAMPLING/testimages.zip/download",
        notes="The full set has 100 images; only the one in the mirror is registered with a checksum.",
        full_size=100,
    ),
    "clic2025": DatasetSpec(
        "clic2025", "clic2025", "CLIC 2025 validation photographs (10 high-resolution images)",
        notes="No per-file download address; get them from https://clic2025.compression.cc/.",
    ),
    "cid22-train": DatasetSpec("cid22-train", "train/cid22", "CID22-512 training split (209 images)"),
    "cid22-valid": DatasetSpec("cid22-valid", "valid/cid22", "CID22-512 validation split (41 images)"),
    "rd-anchors": DatasetSpec(
        "rd-anchors", "rd-anchors", "published rate-distortion tables (CompressAI, GAACNN paper)",
        suffixes=(".json", ".csv", ".txt"),
    ),
}


def set_size(name: str) -> int:
    """Images in the published set (Tecnick: 100, of which 1 is registered here)."""
    return DATASETS[name].full_size or len(dataset_files(name))


@lru_cache(maxsize=1)
def checksums() -> dict[str, str]:
    """Relative path (inside the mirror) -> SHA-256, from data/SHA256SUMS."""
    table = {}
    for line in CHECKSUMS.read_text().splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            table[rel.strip().lstrip("*")] = digest
    return table


def mirror_root() -> Path | None:
    env = os.environ.get("GAACNN_DATA")
    if env:
        return Path(env)
    default = REPO_ROOT.parent / "shared" / "data"
    return default if default.is_dir() else None


def dataset_files(name: str) -> list[str]:
    """Registered relative paths of a data set, sorted."""
    spec = get_dataset(name)
    prefix = spec.folder.rstrip("/") + "/"
    return sorted(r for r in checksums() if r.startswith(prefix) and r.endswith(spec.suffixes))


def get_dataset(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, rel: str) -> Path:
    expected = checksums()[rel]
    actual = sha256_file(path)
    if actual != expected:
        raise DataError(
            f"{path}: checksum mismatch (expected {expected[:12]}..., got {actual[:12]}...); "
            "the file is corrupted or a different version: delete it and run `make data` again"
        )
    return path


def locate(rel: str, download: bool = True) -> Path:
    """Path of one registered file, verified; downloads into data/cache when needed."""
    if rel not in checksums():
        raise DataError(f"{rel} is not a registered data file")
    mirror = mirror_root()
    for root in (mirror, CACHE):
        if root is not None and (root / rel).is_file():
            return verify(root / rel, rel)
    spec = next(s for s in DATASETS.values() if rel.startswith(s.folder.rstrip("/") + "/"))
    if download and (spec.url or spec.archive):
        return verify(_download(spec, rel), rel)
    where = f"mirror {mirror}" if mirror else "no mirror folder (set GAACNN_DATA)"
    raise DataError(
        f"{rel} not found ({where}, cache {CACHE}); "
        + (spec.notes or "put the file in the mirror folder or set GAACNN_DATA")
    )


def _download(spec: DatasetSpec, rel: str) -> Path:
    target = CACHE / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    name = Path(rel).name
    try:
        if spec.url:
            data = urllib.request.urlopen(spec.url.format(name=name), timeout=60).read()
        else:
            archive = urllib.request.urlopen(spec.archive, timeout=600).read()
            with zipfile.ZipFile(io.BytesIO(archive)) as zf:
                member = next(m for m in zf.namelist() if m.endswith("/" + name) or m == name)
                data = zf.read(member)
    except Exception as exc:  # network errors, missing member
        raise DataError(f"could not download {rel} ({exc}); put it in the mirror folder instead") from exc
    tmp = target.with_suffix(target.suffix + ".part")
    tmp.write_bytes(data)
    tmp.replace(target)
    return target


def dataset_paths(name: str, download: bool = True) -> list[Path]:
    """All files of a data set, located and verified: from a pack (``$GAACNN_PACK``) when one holds
    the set, else from the mirror, the cache or the source."""
    packed = packed_paths(name)
    if packed is not None:
        return packed
    return [locate(rel, download) for rel in dataset_files(name)]


# A pack: a data set as lossless WebP files plus the SHA-256 of each image's pixels, for a machine the
# mirror cannot reach. A GPU machine here takes a 64 MiB working tree: CID22 train is 72 MB as PNG and
# about 56 MB as lossless WebP. The pixels, not the files, are what the checksums then vouch for.
PACK_ENV = "GAACNN_PACK"
PACK_INDEX = "pixels.json"


def pixel_digest(rgb: np.ndarray) -> str:
    """SHA-256 of an image's decoded pixels and shape (the same for any lossless file of it)."""
    h = hashlib.sha256(str(rgb.shape).encode())
    h.update(np.ascontiguousarray(rgb).tobytes())
    return h.hexdigest()


def pack(name: str, target: Path, method: int = 5, keep: int | None = None, progress: bool = True) -> Path:
    """Write the set's verified images as lossless WebP into ``target/name`` with their pixel digests;
    ``keep``: only the first ``keep`` of a seeded shuffle (when the whole set cannot travel)."""
    from tqdm.auto import tqdm

    paths = dataset_paths(name)
    if keep is not None:
        order = np.random.default_rng(0).permutation(len(paths))[:keep]
        paths = [paths[i] for i in sorted(order)]
    folder = Path(target) / name
    folder.mkdir(parents=True, exist_ok=True)
    index = []
    for path in tqdm(paths, desc=f"pack {name}", disable=not progress):
        rgb = load_rgb(path)
        out = folder / f"{path.stem}.webp"
        Image.fromarray(rgb).save(out, "WEBP", lossless=True, quality=100, method=method)
        index.append({"file": out.name, "source": path.name, "pixels": pixel_digest(rgb)})
    (folder / PACK_INDEX).write_text(json.dumps({"set": name, "of": len(dataset_files(name)), "images": index},
                                                indent=1))
    return folder


def packed_paths(name: str) -> list[Path] | None:
    """The set's files from the pack under ``$GAACNN_PACK``, each one's pixels verified; None when no
    pack holds the set."""
    root = os.environ.get(PACK_ENV)
    index_file = Path(root) / name / PACK_INDEX if root else None
    if index_file is None or not index_file.is_file():
        return None
    paths = []
    for entry in json.loads(index_file.read_text())["images"]:
        path = index_file.parent / entry["file"]
        if not path.is_file() or pixel_digest(load_rgb(path)) != entry["pixels"]:
            raise DataError(f"{path}: missing, or its pixels differ from {entry['source']}'s; pack the set again")
        paths.append(path)
    return paths


def fetch_all(names: list[str] | None = None, progress: bool = True) -> dict[str, int]:
    """Locate and verify every registered file (``make data``); returns files per set."""
    from tqdm.auto import tqdm

    counts = {}
    for name in names or list(DATASETS):
        files = dataset_files(name)
        for rel in tqdm(files, desc=f"verify {name}", disable=not progress, leave=False):
            locate(rel)
        counts[name] = len(files)
    return counts


def load_rgb(path: Path) -> np.ndarray:
    """An image file as an (H, W, 3) uint8 array (grayscale and RGBA converted to RGB)."""
    with Image.open(path) as im:
        return np.array(im.convert("RGB"))


class RandomCrops(Dataset):
    """Training patches: random crops with horizontal/vertical flips, reproducible with a seed.

    All images are decoded once and kept in memory (CID22 train is about 160 MB as uint8).
    Item ``i`` depends only on (seed, i), so a resumed run sees the same patches.
    """

    def __init__(self, paths: list[Path], patch: int = 256, seed: int = 0, length: int = 10**9,
                 device: torch.device | str | None = None) -> None:
        self.images = [load_rgb(p) for p in paths]
        small = [str(p) for p, im in zip(paths, self.images) if min(im.shape[:2]) < patch]
        if small:
            raise DataError(f"images smaller than the {patch}px patch: {', '.join(small[:3])}")
        self.patch, self.seed, self.length = patch, seed, length
        # ``device``: keep the images there as uint8 tensors and crop there (a GPU then copies nothing
        # per step); the crops are the same numbers either way.
        self.on_device = None if device is None else [
            torch.from_numpy(im).permute(2, 0, 1).contiguous().to(device) for im in self.images]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> torch.Tensor:
        rng = np.random.default_rng((self.seed, i))
        k = rng.integers(len(self.images))
        im = self.images[k]
        h, w = im.shape[:2]
        top, left = rng.integers(h - self.patch + 1), rng.integers(w - self.patch + 1)
        if self.on_device is not None:
            crop = self.on_device[k][:, top : top + self.patch, left : left + self.patch]
            if rng.random() < 0.5:
                crop = crop.flip(2)
            if rng.random() < 0.5:
                crop = crop.flip(1)
            return crop.float() / 255.0
        crop = im[top : top + self.patch, left : left + self.patch]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if rng.random() < 0.5:
            crop = crop[::-1]
        return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float() / 255.0


def center_crops(paths: list[Path], size: int) -> torch.Tensor:
    """Centre crops (N, 3, size, size) in [0, 1], for validation."""
    out = []
    for p in paths:
        im = load_rgb(p)
        h, w = im.shape[:2]
        s = min(size, h, w)
        top, left = (h - s) // 2, (w - s) // 2
        out.append(torch.from_numpy(im[top : top + s, left : left + s].copy()).permute(2, 0, 1))
    return torch.stack(out).float() / 255.0
