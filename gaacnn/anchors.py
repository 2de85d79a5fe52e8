"""Classical codecs run live, for the anchors of Figs. 4-5 and Tables I-II.

Container overhead: every codec's bpp is the size of the complete file it writes
(JFIF, JP2, RIFF/WebP, HEIF/AVIF, JXL containers included), exactly as our .gaac files count
their header. HEVC is HEVC intra 4:4:4 in a HEIF container through pillow-heif (libx265):
a stand-in for BPG (BPG is HEVC intra too), labelled "HEVC-intra 4:4:4 (pillow-heif)", never BPG.
A codec whose library is missing on this machine is skipped with a message.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, features


@dataclass(frozen=True)
class Codec:
    name: str  # short key
    label: str  # legend text
    qualities: tuple  # the sweep, lowest quality first
    encode: Callable[[np.ndarray, float], bytes]
    decode: Callable[[bytes], np.ndarray]
    available: Callable[[], bool]


def _pil_encode(fmt: str, **fixed) -> Callable[[np.ndarray, float], bytes]:
    def encode(img: np.ndarray, q: float) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format=fmt, quality=int(q), **fixed)
        return buf.getvalue()

    return encode


def _pil_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.array(im.convert("RGB"))


def _jp2_encode(img: np.ndarray, ratio: float) -> bytes:
    buf = io.BytesIO()
    # mct=1: the reversible/irreversible colour transform on, as in the paper's JPEG 2000 anchor
    Image.fromarray(img).save(buf, format="JPEG2000", quality_mode="rates", quality_layers=[ratio],
                              irreversible=True, mct=1)
    return buf.getvalue()


def _heif_available() -> bool:
    try:
        import pillow_heif

        return bool(pillow_heif.libheif_info().get("encoders", {}).get("HEVC", True))
    except Exception:
        return False


def _heif_encode(img: np.ndarray, q: float) -> bytes:
    import pillow_heif

    heif = pillow_heif.from_bytes(mode="RGB", size=(img.shape[1], img.shape[0]), data=img.tobytes())
    buf = io.BytesIO()
    heif.save(buf, quality=int(q), chroma=444)
    return buf.getvalue()


def _heif_decode(data: bytes) -> np.ndarray:
    import pillow_heif

    h = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
    return np.asarray(h.to_pillow().convert("RGB"))


def _jxl_available() -> bool:
    try:
        import imagecodecs

        return bool(imagecodecs.JPEGXL.available)
    except Exception:
        return False


def _jxl_encode(img: np.ndarray, distance: float) -> bytes:
    import imagecodecs

    return imagecodecs.jpegxl_encode(img, distance=float(distance), effort=7)


def _jxl_decode(data: bytes) -> np.ndarray:
    import imagecodecs

    return imagecodecs.jpegxl_decode(data)


CODECS: dict[str, Codec] = {
    c.name: c
    for c in [
        Codec("jpeg", "JPEG (Pillow)", (5, 10, 20, 30, 50, 70, 85), _pil_encode("JPEG"), _pil_decode,
              lambda: features.check("jpg")),
        Codec("jpeg2000", "JPEG 2000 (Pillow/OpenJPEG)", (200, 120, 80, 50, 30, 20, 12), _jp2_encode,
              _pil_decode, lambda: features.check("jpg_2000")),
        Codec("webp", "WebP (Pillow)", (5, 15, 30, 50, 70, 85), _pil_encode("WEBP", method=6), _pil_decode,
              lambda: features.check("webp")),
        Codec("avif", "AVIF (Pillow)", (10, 25, 40, 55, 70, 80), _pil_encode("AVIF", subsampling="4:4:4"),
              _pil_decode, lambda: features.check("avif")),
        Codec("hevc", "HEVC-intra 4:4:4 (pillow-heif; BPG stand-in)", (10, 25, 40, 55, 65, 75),
              _heif_encode, _heif_decode, _heif_available),
        Codec("jpegxl", "JPEG XL (imagecodecs)", (15.0, 10.0, 6.0, 4.0, 2.5, 1.5, 1.0), _jxl_encode, _jxl_decode,
              _jxl_available),
    ]
}


def available_codecs(names: list[str] | None = None, warn: Callable[[str], None] = print) -> list[Codec]:
    out = []
    for name in names or list(CODECS):
        codec = CODECS[name]
        if codec.available():
            out.append(codec)
        else:
            warn(f"skipping {codec.label}: not available on this machine")
    return out
