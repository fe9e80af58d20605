"""Process-wide tuning, applied once: nothing here is about any one model.

The executor calls :func:`tune_allocator` on its first run (so the Python API gets it
too); the CLI may call it at start. Calling it again costs one dict lookup.
"""
from __future__ import annotations

import ctypes
import os
import sys

# A training step allocates and frees the same large arrays every step (activations,
# gradients, im2col patches). glibc serves blocks above its mmap threshold (128 KiB,
# raised dynamically only up to the largest block freed so far) with fresh mmap()s and
# returns a heap top above its trim threshold to the kernel, so every step touches new
# pages: measured 750 (MLP), 1,600 (LSTM) and 4,600 (CNN) page faults per step,
# 35-40% of the step time. Raising both thresholds keeps freed blocks in the heap for
# the next step. Applied once per process (the executor's first run, or the CLI at
# start), glibc only; GRAPHSPEC_MALLOC_TUNING=0 leaves the allocator alone.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20     # glibc's maximum on 64-bit systems
TRIM_THRESHOLD = 64 << 20     # free heap kept at most, above which the heap is trimmed
_ALLOCATOR = {"tuned": None}


def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; True if applied."""
    if _ALLOCATOR["tuned"] is not None:
        return _ALLOCATOR["tuned"]
    _ALLOCATOR["tuned"] = False
    if os.environ.get("GRAPHSPEC_MALLOC_TUNING", "1").strip().lower() in ("0", "false", "no",
                                                                          "off"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):   # musl and others: leave them
            return False
        mallopt = libc.mallopt
        mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
        ok = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    except (OSError, AttributeError):
        return False
    _ALLOCATOR["tuned"] = ok
    return ok
