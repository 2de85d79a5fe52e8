"""The .gaac file format for one compressed image (the bytes on disk).

Layout (big-endian), format version 2:
    magic      4 bytes  b"GAAC"
    version    1 byte   FORMAT_VERSION (1 or 2; this module reads both and writes 2)
    flags      1 byte   bit 0: context model on; the other bits must be 0
    arch       1 byte   length, then ASCII ("gaacnn" or "mshp")
    preset     1 byte   length, then ASCII (preset name, or "N64M96" for the control)
    weights    8 bytes  fingerprint of the parameter values (see weights.weights_fingerprint)
    height     4 bytes  original image height
    width      4 bytes  original image width
    z shape    2 x 2 bytes
    symbols    8 bytes  (v2) digest of every coded symbol (rans_guard.SymbolDigest)
    writer     1 byte   (v2) length, then ASCII: the device kind and software that encoded
    sections   1 byte   count (2), then for each: 4-byte length + payload (y string, z string)
    crc32      4 bytes  of everything before it
Where it sits: ... entropy coders -> strings -> [this file] -> strings -> entropy decoders ...

Every field is parsed and checked here, inside one error boundary: whatever the bytes, ``unpack``
returns a header that makes sense or raises :class:`BitstreamError` (what a file may ask the decoder
to allocate is bounded separately, by ``codec.decode``'s pixel limit).
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

from .errors import GaacnnError

MAGIC = b"GAAC"
FORMAT_VERSION = 2
ARCHS = ("gaacnn", "mshp")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_WRITER = re.compile(r"[ -~]{0,200}")  # printable ASCII


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
    symbols: bytes | None = None  # v2: digest of the coded symbols (None in version-1 files)
    writer: str = ""  # v2: who encoded (device kind, platform, torch)
    version: int = FORMAT_VERSION


def _short_str(s: str) -> bytes:
    b = s.encode("ascii")
    return struct.pack(">B", len(b)) + b


def pack(header: Header, sections: list[bytes]) -> bytes:
    """Header and sections -> the bytes of a version-2 file."""
    if header.symbols is None or len(header.symbols) != 8:
        raise ValueError("a version-2 header needs the 8-byte symbol digest")
    body = bytearray(MAGIC)
    body += struct.pack(">BB", FORMAT_VERSION, int(header.context))
    body += _short_str(header.arch) + _short_str(header.preset)
    body += header.fingerprint
    body += struct.pack(">IIHH", header.height, header.width, *header.z_shape)
    body += header.symbols + _short_str(header.writer[:200])
    body += struct.pack(">B", len(sections))
    for s in sections:
        body += struct.pack(">I", len(s)) + s
    return bytes(body) + struct.pack(">I", zlib.crc32(body))


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise BitstreamError("file is truncated or corrupted: a field runs past its end")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def text(self, what: str, pattern: re.Pattern) -> str:
        raw = self.take(self.unpack(">B")[0])
        text = raw.decode("ascii", errors="replace")
        if not raw.isascii() or not pattern.fullmatch(text):
            raise BitstreamError(f"file names an invalid {what} ({text[:40]!r}): corrupted")
        return text


def unpack(data: bytes) -> tuple[Header, list[bytes]]:
    """The bytes of a .gaac file -> (header, [y string, z string]); BitstreamError for anything else."""
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
    if version == 0:
        raise BitstreamError("file declares format version 0: corrupted")
    if len(data) < 10:
        raise BitstreamError("file is truncated")
    body, crc = data[:-4], struct.unpack(">I", data[-4:])[0]
    if zlib.crc32(body) != crc:
        raise BitstreamError("file is truncated or corrupted (checksum mismatch)")
    try:
        return _parse(body, version)
    except BitstreamError:
        raise
    except (struct.error, ValueError, UnicodeError, IndexError) as exc:  # defence in depth
        raise BitstreamError(f"file header is malformed ({exc.__class__.__name__}): corrupted") from None


def _parse(body: bytes, version: int) -> tuple[Header, list[bytes]]:
    r = _Reader(body)
    r.take(5)
    (flags,) = r.unpack(">B")
    if flags & ~1:
        raise BitstreamError(f"file sets unknown flags ({flags:#04x}): corrupted")
    arch = r.text("architecture", _NAME)
    if arch not in ARCHS:
        raise BitstreamError(f"file names an unknown architecture {arch!r}: corrupted")
    preset = r.text("preset", _NAME)
    fingerprint = r.take(8)
    height, width, zh, zw = r.unpack(">IIHH")
    symbols, writer = None, ""
    if version >= 2:
        symbols = r.take(8)
        writer = r.text("writer", _WRITER)
    (count,) = r.unpack(">B")
    if count != 2:
        raise BitstreamError(f"file has {count} sections instead of 2: corrupted")
    sections = [r.take(r.unpack(">I")[0]) for _ in range(count)]
    if r.pos != len(body):
        raise BitstreamError("file has trailing bytes: corrupted")
    if height == 0 or width == 0:
        raise BitstreamError("file declares an empty image")
    header = Header(arch, preset, bool(flags & 1), fingerprint, height, width, (zh, zw), symbols, writer, version)
    return header, sections
