"""The .gaac file format for one compressed image (the bytes on disk).

Layout (big-endian):
    magic      4 bytes  b"GAAC"
    version    1 byte   FORMAT_VERSION
    flags      1 byte   bit 0: context model on
    arch       1 byte   length, then ASCII ("gaacnn" or "mshp")
    preset     1 byte   length, then ASCII (preset name, or "N64M96" for the control)
    weights    8 bytes  fingerprint of the parameter values (see weights.weights_fingerprint)
    height     4 bytes  original image height
    width      4 bytes  original image width
    z shape    2 x 2 bytes
    sections   1 byte   count, then for each: 4-byte length + payload (y string, z string)
    crc32      4 bytes  of everything before it
Where it sits: ... entropy coders -> strings -> [this file] -> strings -> entropy decoders ...
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from .errors import GaacnnError

MAGIC = b"GAAC"
FORMAT_VERSION = 1


class BitstreamError(GaacnnError):
    """A file that is not ours, truncated, corrupted, or of a newer format version."""


@dataclass
class Header:
    arch: str
    preset: str
    context: bool
    fingerprint: bytes
    height: int
    width: int
    z_shape: tuple[int, int]


def _short_str(s: str) -> bytes:
    b = s.encode("ascii")
    return struct.pack(">B", len(b)) + b


def pack(header: Header, sections: list[bytes]) -> bytes:
    body = bytearray(MAGIC)
    body += struct.pack(">BB", FORMAT_VERSION, int(header.context))
    body += _short_str(header.arch) + _short_str(header.preset)
    body += header.fingerprint
    body += struct.pack(">IIHHB", header.height, header.width, *header.z_shape, len(sections))
    for s in sections:
        body += struct.pack(">I", len(s)) + s
    return bytes(body) + struct.pack(">I", zlib.crc32(body))


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise BitstreamError("file is truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))


def unpack(data: bytes) -> tuple[Header, list[bytes]]:
    if 0 < len(data) < 4 and MAGIC.startswith(data):
        raise BitstreamError("file is truncated")
    if len(data) < 4 or data[:4] != MAGIC:
        raise BitstreamError("not a gaacnn file (bad magic bytes)")
    if len(data) < 6:
        raise BitstreamError("file is truncated")
    version = data[4]
    if version > FORMAT_VERSION:
        raise BitstreamError(
            f"file format version {version} is newer than this gaacnn supports ({FORMAT_VERSION}); upgrade gaacnn"
        )
    if len(data) < 10:
        raise BitstreamError("file is truncated")
    body, crc = data[:-4], struct.unpack(">I", data[-4:])[0]
    r = _Reader(body)
    r.take(5)
    (flags,) = r.unpack(">B")
    try:
        arch = r.take(r.unpack(">B")[0]).decode("ascii")
        preset = r.take(r.unpack(">B")[0]).decode("ascii")
        fingerprint = r.take(8)
        height, width, zh, zw, count = r.unpack(">IIHHB")
        sections = [r.take(r.unpack(">I")[0]) for _ in range(count)]
    except (BitstreamError, UnicodeDecodeError):
        if zlib.crc32(body) != crc:
            raise BitstreamError("file is truncated or corrupted (checksum mismatch)") from None
        raise
    if zlib.crc32(body) != crc:
        raise BitstreamError("file is corrupted (checksum mismatch)")
    if r.pos != len(body):
        raise BitstreamError("file has trailing bytes: corrupted")
    if height == 0 or width == 0:
        raise BitstreamError("file declares an empty image")
    header = Header(arch, preset, bool(flags & 1), fingerprint, height, width, (zh, zw))
    return header, sections
