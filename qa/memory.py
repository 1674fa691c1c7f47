"""Giving freed memory back to the system, and mapped pages back to the page cache;
fewer malloc arenas for a server's threads.

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
import os
from typing import Any

import numpy as np

_libc: Any = None


# mallopt's parameter for the most arenas malloc makes (glibc's malloc.h).
_M_ARENA_MAX = -8


def limit_malloc_arenas() -> None:
    """Let malloc make at most one arena per core, not eight per core as glibc does by
    default: a server's request threads then share arenas instead of each taking its
    own, whose memory stays with that thread. Served at a million passages, with a
    search after each PUT, 8 request threads had grown the process 86 MB by the 17th
    PUT, and 2 arenas 16 MB. Call it before the threads start; elsewhere than glibc
    nothing happens."""
    mallopt = getattr(_c_library(), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_ARENA_MAX, max(1, os.cpu_count() or 1))


def _c_library() -> Any:
    """The C library, or None where ctypes cannot find one."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        except OSError:
            _libc = False
    return _libc or None


def release_freed_memory() -> None:
    """Return the memory malloc holds free to the system, where the C library can
    (glibc's ``malloc_trim``); elsewhere nothing happens."""
    trim = getattr(_c_library(), "malloc_trim", None)
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
