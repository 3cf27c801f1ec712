"""Reading from memory-mapped files only the pages a search needs, and those at once.

On a page fault the kernel also reads the pages around it (up to the disk's ``read_ahead_kb``),
which suits scans and wastes a cold disk's time on scattered rows (the bytes a cold open and
query read, with and without this module: docs/benchmarks/search-index.md, ``python -m
benchmarks.targets.ann``). Searches that read scattered rows (full vectors to re-rank, a
refining codec's finer codes) map their file ``MADV_RANDOM``, so that a fault reads its own
page only; finer codes, rarely in memory, are also asked for all at once (``MADV_WILLNEED``),
so that their reads can overlap. Without a POSIX libc both are no-ops: the same results, read
as the kernel likes. A file that a library maps for random access (FAISS its index) can have
its head, which is read whole anyway, asked for at once (`prefetch_head`).
"""

from __future__ import annotations

import ctypes
import mmap
import os
from pathlib import Path
from typing import Any

import numpy as np

PAGE = mmap.PAGESIZE
_WILLNEED = getattr(mmap, "MADV_WILLNEED", 3)
_RANDOM = getattr(mmap, "MADV_RANDOM", 1)


def _libc_madvise() -> Any | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):  # not a POSIX libc
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_MADVISE = _libc_madvise()


def _address(rows: np.ndarray) -> int:
    return int(rows.__array_interface__["data"][0])


def advise_random(rows: np.ndarray) -> None:
    """Mark the pages under `rows` (a view of a memory map) for random access."""
    span = int(rows.strides[0]) * len(rows) if rows.ndim else 0
    if _MADVISE is None or not span:
        return
    start = _address(rows) // PAGE * PAGE
    _MADVISE(start, _address(rows) + span - start, _RANDOM)


def prefetch_rows(rows: np.ndarray, ids: np.ndarray) -> None:
    """Ask the kernel for the pages holding rows `ids` of `rows` (a 2-D view of a memory map,
    maybe of wider rows) all at once; they are read while the caller goes on."""
    if _MADVISE is None or not len(ids):
        return
    size = rows.shape[1] * rows.itemsize
    start = np.sort(_address(rows) + np.asarray(ids, np.int64) * int(rows.strides[0]))
    first, last = start // PAGE, (start + size - 1) // PAGE
    new = np.ones(len(first), bool)  # one call per distinct span of pages
    new[1:] = (first[1:] != first[:-1]) | (last[1:] != last[:-1])
    for lo, hi in zip(first[new].tolist(), last[new].tolist(), strict=True):
        _MADVISE(lo * PAGE, (hi - lo + 1) * PAGE, _WILLNEED)


def prefetch_head(path: Path, length: int) -> None:
    """Ask the kernel to read the first `length` bytes of `path` in the background (a file
    about to be read through a map marked random access, as FAISS marks its index)."""
    if not hasattr(os, "posix_fadvise") or length <= 0:
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # the caller's own open reports it
    try:
        os.posix_fadvise(fd, 0, length, os.POSIX_FADV_WILLNEED)
    finally:
        os.close(fd)
