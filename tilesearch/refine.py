"""The second stage of a refining codec (``...,Refine(SQ8)``), read from disk in parallel.

A refining index keeps, besides the compact first-stage codes, a finer code of every tile
(8 bits for each fingerprint dimension). FAISS's ``IndexRefine`` reads the finer codes of
the first stage's candidates one page fault at a time: with the codes memory-mapped and not
in the page cache, 256 candidates cost 256 sequential disk reads (9.4 ms here,
benchmarks/bench_prefetch.py). This ranks the candidates itself and first asks the kernel for
all their pages at once (``madvise(MADV_WILLNEED)``), so the reads overlap (2.3 ms) and
the finer codes need not fit in RAM; the region is marked ``MADV_RANDOM`` so that a fault
does not also read the pages around it.
"""

from __future__ import annotations

import ctypes
import mmap
from typing import Any

import numpy as np

_PAGE = mmap.PAGESIZE
_WILLNEED = getattr(mmap, "MADV_WILLNEED", 3)
_RANDOM = getattr(mmap, "MADV_RANDOM", 1)


def _libc_madvise() -> Any | None:
    try:
        fn = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):  # not a POSIX libc: no prefetch, same results
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_MADVISE = _libc_madvise()


class Refiner:
    """Ranks candidate ids by the finer codes of a FAISS ``IndexRefine`` over unit vectors."""

    def __init__(self, index: Any, faiss: Any) -> None:
        self._index = index  # holds the C++ objects the views below point into
        self.base = faiss.downcast_index(index.base_index)
        self.fine = faiss.downcast_index(index.refine_index)
        codes = self.fine.codes
        self.mapped = not codes.is_owned  # memory-mapped from the index file
        flat = faiss.rev_swig_ptr(codes.data(), codes.size())
        self.codes = flat.reshape(int(self.fine.ntotal), int(self.fine.code_size))
        self._addr = int(flat.__array_interface__["data"][0])
        if self.mapped and _MADVISE is not None and flat.size:
            # no read-around on a fault: only the pages asked for are read and kept
            start = self._addr // _PAGE * _PAGE
            _MADVISE(start, self._addr + flat.size - start, _RANDOM)

    def prefetch(self, ids: np.ndarray) -> None:
        """Start reading the pages holding the finer codes of `ids` (no-op when in RAM)."""
        if not self.mapped or _MADVISE is None or not len(ids):
            return
        size = self.codes.shape[1]
        first = (self._addr + ids * size) // _PAGE
        last = (self._addr + ids * size + size - 1) // _PAGE
        for page in np.unique(np.concatenate([first, last])).tolist():
            _MADVISE(page * _PAGE, _PAGE, _WILLNEED)

    def rank(self, q: np.ndarray, ids: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        """The `m` best of candidate `ids` for unit query `q` (1, d): ids and squared L2."""
        ids = ids[ids >= 0]
        self.prefetch(ids)
        x = self.fine.sa_decode(np.ascontiguousarray(self.codes[ids]))
        d = ((x - q) ** 2).sum(1)
        order = np.lexsort((ids, d))[:m]
        return ids[order], d[order]
