""".gaac files as a careless disk or a careful attacker makes them: the fuzzing behind
``tests/test_fuzz.py`` and ``benchmarks/fuzz_decode.py``.

Where this sits: a real file -> [mutate: flip, truncate, insert, set a header field to an extreme,
then recompute the CRC or not] -> codec.decode -> the project's error, or an image that the mutated
file legitimately describes (the same decoded latents, cropped to the size its header states).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from compressai.ops import compute_padding

from .bitstream import unpack
from .errors import GaacnnError

EXTREMES = (0, 1, 2, 63, 64, 65, 255, 256, 6000, 65535, 65536, 2**31 - 1, 2**32 - 1)


def with_crc(body: bytes) -> bytes:
    """``body`` (a file without its last 4 bytes) with a CRC-32 that matches it."""
    return bytes(body) + struct.pack(">I", zlib.crc32(bytes(body)))


def field_offsets(data: bytes) -> dict[str, tuple[int, int]]:
    """Byte range (start, length) of each header field of a well-formed file."""
    pos, out = 6, {"version": (4, 1), "flags": (5, 1)}
    for name in ("arch", "preset"):
        out[f"{name}_len"] = (pos, 1)
        out[name] = (pos + 1, data[pos])
        pos += 1 + data[pos]
    for name, size in (("fingerprint", 8), ("height", 4), ("width", 4), ("z_h", 2), ("z_w", 2)):
        out[name] = (pos, size)
        pos += size
    if data[4] >= 2:
        out["symbols"] = (pos, 8)
        pos += 8
        out["writer_len"] = (pos, 1)
        pos += 1 + data[pos]
    out["count"] = (pos, 1)
    pos += 1
    for k in range(2):
        out[f"section{k}_len"] = (pos, 4)
        pos += 4 + struct.unpack(">I", data[pos : pos + 4])[0]
    return out


def oversized(data: bytes, height: int, width: int) -> bytes:
    """The file with its image size set to ``height`` x ``width`` and the z shape to match, CRC
    recomputed: the header asks the decoder for far more symbols than the streams hold."""
    f = field_offsets(data)
    body = bytearray(data[:-4])
    pad, _ = compute_padding(height, width, min_div=64)
    zh, zw = (height + pad[2] + pad[3]) // 64, (width + pad[0] + pad[1]) // 64
    for name, value, fmt in (("height", height, ">I"), ("width", width, ">I"), ("z_h", zh, ">H"), ("z_w", zw, ">H")):
        body[f[name][0] : f[name][0] + f[name][1]] = struct.pack(fmt, min(value, 2 ** (8 * f[name][1]) - 1))
    return with_crc(body)


def mutations(data: bytes, rng: np.random.Generator) -> Iterator[tuple[str, bytes]]:
    """An endless stream of (kind, mutated file): half random corruption with the CRC left alone,
    half crafted with the CRC recomputed (flips, truncation, insertion, extreme header values)."""
    fields = field_offsets(data)
    body = data[:-4]
    while True:
        b = bytearray(data if rng.random() < 0.5 else body)
        crafted = len(b) == len(body)
        kind = rng.choice(["flip", "truncate", "insert", "field"] if crafted else ["flip", "truncate", "insert"])
        if kind == "flip":
            for _ in range(int(rng.integers(1, 4))):
                b[int(rng.integers(len(b)))] ^= 1 << int(rng.integers(8))
        elif kind == "truncate":
            del b[int(rng.integers(len(b))):]
        elif kind == "insert":
            at = int(rng.integers(len(b) + 1))
            b[at:at] = rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes()
        else:
            name = str(rng.choice(sorted(fields)))
            start, size = fields[name]
            if size == 0:
                continue
            if name in ("arch", "preset"):
                b[start + int(rng.integers(size))] = int(rng.integers(128, 256))  # non-ASCII
            else:
                value = int(rng.choice(EXTREMES)) % 2 ** (8 * size) if rng.random() < 0.7 else int(
                    rng.integers(0, 2 ** min(8 * size, 62)))
                b[start : start + size] = value.to_bytes(size, "big")
            kind = f"field:{name}"
        yield (f"crc+{kind}" if crafted else kind), (with_crc(b) if crafted else bytes(b))


@dataclass
class Reference:
    """What a file decodes to before cropping: every legitimate variant of it is a crop of this."""

    x_padded: torch.Tensor
    sections: list[bytes]
    symbols: bytes | None


def reference(model, data: bytes) -> Reference:
    header, sections = unpack(data)
    with torch.inference_mode():
        out = model.decompress([[sections[0]], [sections[1]]], header.z_shape)
    return Reference(out["x_hat"].cpu(), sections, header.symbols)


def judge(model, ref: Reference, mutated: bytes, decode) -> str:
    """'refused' (the project's error), 'same' (the image the mutated header legitimately asks for:
    the reference cropped to its size), or what went wrong: 'wrong image', 'exception: <type>'."""
    try:
        x = decode(model, mutated)
    except GaacnnError:
        return "refused"
    except Exception as exc:  # noqa: BLE001 - the point of the fuzzing is to see these
        return f"exception: {exc.__class__.__name__}: {str(exc)[:80]}"
    header, sections = unpack(mutated)
    _, unpad = compute_padding(header.height, header.width, min_div=64)
    if sections == ref.sections and tuple(x.shape[-2:]) == (header.height, header.width):
        if torch.equal(x, F.pad(ref.x_padded, unpad)):
            return "same"
    return "wrong image"
