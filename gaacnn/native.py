"""The compiled wavefront coder (``csrc/wavefront.cpp``): built on first use, or ``None``.

Where this sits: GAACNN.compress / decompress -> [this: the whole wavefront loop of paper Sec. III-E in
C++: context taps, entropy parameters, mixture CDFs, rANS] -> bytes / y_hat.

Why: the Python loop codes kodim01's 1,638 wavefront steps of ~37 elements in ~1.5 s, nearly all of it
interpreter and dispatch overhead (issue 22: decode at most 3x the control). The C++ loop calls the
same ATen kernels for every floating-point result whose rounding could depend on how it is computed,
so it writes the same bytes and decodes the same symbols (tests/test_native.py); the Python loop stays
as the reference, and is what runs where no C++ compiler is found (``GAACNN_NATIVE=0`` forces it).

The build (torch.utils.cpp_extension, under a minute, once; ``make setup`` does it) lands in
``build/native``.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "csrc" / "wavefront.cpp"
BUILD = Path(__file__).resolve().parent.parent / "build" / "native"
# No contraction of a * b + c into one fused multiply-add: Python's ops round each step.
CFLAGS = ["-O3", "-ffp-contract=off", "-fno-fast-math"]


def wavefront_module():
    """The compiled module, or None: no compiler, a failed build, or ``GAACNN_NATIVE=0`` (read at every
    call, so that tests and benchmarks can compare both loops in one process)."""
    if os.environ.get("GAACNN_NATIVE", "1") == "0":
        return None
    return _build()


@functools.cache
def _build():
    try:
        import logging

        # cpp_extension logs at import that no CUDA runtime exists: not news for a CPU-only build.
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        from torch.utils.cpp_extension import load

        BUILD.mkdir(parents=True, exist_ok=True)
        _clear_stale_lock(BUILD / "lock")
        return load(name="gaacnn_wavefront", sources=[str(SOURCE)], extra_cflags=CFLAGS,
                    build_directory=str(BUILD), verbose=False)
    except Exception as exc:  # a missing compiler must not stop decoding: the Python loop gives the same bits
        warnings.warn(f"the compiled wavefront decoder is unavailable ({exc.__class__.__name__}: {exc}); "
                      "coding GAACNN files in Python, several times slower", stacklevel=2)
        return None


def _clear_stale_lock(lock: Path, minutes: float = 10.0) -> None:
    """cpp_extension waits, without end, while another process's build holds ``lock``; a build that was
    killed leaves it behind. A build takes under a minute: a lock older than ``minutes`` is stale."""
    import time

    try:
        if time.time() - lock.stat().st_mtime > 60 * minutes:
            lock.unlink()
    except FileNotFoundError:
        pass


def report() -> None:
    """``make setup``: build once, and say where (or that the Python loop will code)."""
    module = wavefront_module()
    print(f"compiled wavefront coder: {module.__file__ if module else 'unavailable, the Python loop codes'}")
