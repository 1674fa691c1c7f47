"""Giving freed memory back to the system, and mapped pages back to the page cache.

Each write builds a new snapshot and frees the one before it, but glibc's malloc
keeps freed memory in its per-thread arenas instead of returning it, so a serving
process grew by about a snapshot per write: +2,075 MB over 20 PUTs at 178,000
passages, +202 MB with this (``python -m bench.engine --sizes 100000``,
docs/BENCHMARKS.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
from typing import Any

import numpy as np

_libc: Any = None


def release_freed_memory() -> None:
    """Return the memory malloc holds free to the system, where the C library can
    (glibc's ``malloc_trim``); elsewhere nothing happens."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        except OSError:
            _libc = False
    trim = getattr(_libc, "malloc_trim", None) if _libc else None
    if trim is not None:
        trim(0)


def release_pages(array: np.ndarray) -> None:
    """Stop holding the pages of the file mapping ``array`` is a view of (np.load's
    mmap_mode): they stay in the page cache, and this process's memory no longer
    counts them until it reads them again. Nothing happens to an array in memory."""
    base: Any = array
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        base.madvise(mmap.MADV_DONTNEED)
