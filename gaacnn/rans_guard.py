"""Guards around CompressAI's rANS coder: never read outside a stream, refuse one that ran out, and
fingerprint the coded symbols so that a decoder computing other CDFs refuses instead of guessing.

Where this sits: ... entropy parameters -> CDFs -> [rANS: symbols <-> strings] -> .gaac file.
Every string a model codes passes through here, for GAACNN's wavefront coder (``model.py``) and
for CompressAI's own entropy models (the factorized prior of z, the control's Gaussian conditional),
whose ``entropy_coder`` is swapped for :class:`GuardedCoder` while a file is coded (:func:`guarded`).

Why padding: CompressAI's decoder reads 32-bit words from its copy of the string without a bound
(``Rans64DecRenorm``); a header asking for more symbols than the string holds made it read past the
end, return an image made of memory contents, or crash. Each decode operation (one symbol, or one
4-bit chunk of an escaped "bypass" value) reads at most one word, so a string followed by
``4 * symbols`` zero bytes covers every plain symbol. Escapes read in proportion to the 1-bits they
find: inside the string at most 15 chunks per 4 bits of it (``16 * len(string)`` bytes covers
them), and in the zero padding their chunks read zeros and stop within a few words; 64 KiB more
covers those.

Why the end probe: a legitimate stream ends exactly where the encoder began, in rANS state
``2**31`` with every word consumed. After the last symbol the decoder decodes three 16-bit values
with a uniform table; they read the state and then the marker word that follows the string, and
come out as ``(0, marker low half, marker high half)`` only in that case. Anything else, a decoder
that consumed the marker or the zeros after it, or a stream with words left over, is refused.
"""

from __future__ import annotations

import hashlib
import sys
from contextlib import contextmanager

import numpy as np
from compressai.ans import RansDecoder

from .bitstream import BitstreamError

MARKER = 0x5A3C96E1
_MARKER_BYTES = MARKER.to_bytes(4, sys.byteorder)  # read back as a native 32-bit word
_UNIFORM_CDF = list(range(65536)) + [65536]  # 16-bit precision, one value per cum. frequency
_PROBE = [0, MARKER & 0xFFFF, MARKER >> 16]


def padded(string: bytes, symbols: int) -> bytes:
    """``string``, the end marker and enough zero bytes that decoding ``symbols`` values never reads
    past the buffer (see the module docstring for the bound)."""
    return string + _MARKER_BYTES + bytes(4 * symbols + 16 * len(string) + 65536)


class StreamDecoder:
    """One string decoded step by step (GAACNN's wavefront), at most ``symbols`` values in all."""

    def __init__(self, string: bytes, symbols: int) -> None:
        self.left = symbols
        self._decoder = RansDecoder()
        self._decoder.set_stream(padded(string, symbols))

    def decode(self, indexes: list[int], cdfs: list, lengths: list[int], offsets: list[int]) -> list[int]:
        if len(indexes) > self.left:
            raise BitstreamError("the stream holds fewer symbols than the decoder asks for: corrupted")
        self.left -= len(indexes)
        return self._decoder.decode_stream(indexes, cdfs, lengths, offsets)

    def finish(self) -> None:
        """Refuse a stream that ran out (the decoder read past its end) or has words left over."""
        if self.left:
            raise BitstreamError(f"{self.left} symbols were never decoded: corrupted")
        probe = self._decoder.decode_stream([0, 0, 0], [_UNIFORM_CDF], [len(_UNIFORM_CDF)], [0])
        if probe != _PROBE:
            raise BitstreamError("the entropy-coded stream does not end where its symbols do: "
                                 "the file is corrupted or was crafted")


class SymbolDigest:
    """SHA-256 over every coded symbol list, in coding order (encoder and decoder see the same
    lists in the same order when, and only when, they computed the same CDFs)."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def update(self, symbols: list[int]) -> None:
        self._h.update(np.asarray(symbols, dtype="<i4").tobytes())

    def digest(self) -> bytes:
        return self._h.digest()[:8]


class GuardedCoder:
    """Stands in for a CompressAI entropy model's ``entropy_coder``: the same calls, with the
    padding and end probe on decode. The symbols of one direction feed ``digest``: those encoded
    while encoding (the encoder also decodes z, to get the decoder's z_hat), those decoded while
    decoding."""

    def __init__(self, inner, digest: SymbolDigest, encoding: bool) -> None:
        self.inner, self.digest, self.encoding = inner, digest, encoding
        self.name = getattr(inner, "name", "ans")

    def encode_with_indexes(self, symbols, indexes, cdfs, lengths, offsets):
        if self.encoding:
            self.digest.update(symbols)
        return self.inner.encode_with_indexes(symbols, indexes, cdfs, lengths, offsets)

    def decode_with_indexes(self, string, indexes, cdfs, lengths, offsets):
        stream = StreamDecoder(string, len(indexes))
        values = stream.decode(indexes, cdfs, lengths, offsets)
        stream.finish()
        if not self.encoding:
            self.digest.update(values)
        return values


@contextmanager
def guarded(model, encoding: bool):
    """While coding one file: route every entropy model of ``model`` through :class:`GuardedCoder`
    and GAACNN's wavefront coder through ``model.symbol_digest``; yields the :class:`SymbolDigest`."""
    digest = SymbolDigest()
    swapped = [m for m in model.modules() if hasattr(m, "entropy_coder")]
    originals = [m.entropy_coder for m in swapped]
    for m in swapped:
        m.entropy_coder = GuardedCoder(m.entropy_coder, digest, encoding)
    model.symbol_digest = digest
    try:
        yield digest
    finally:
        for m, coder in zip(swapped, originals):
            m.entropy_coder = coder
        model.symbol_digest = None
