"""The second stage of a refining codec (``...,Refine(SQ8)``): finer codes in a file of their
own, written while adding and read from disk in parallel when ranking.

A refining index keeps, besides the compact first-stage codes, a finer code of every tile
(8 bits for each fingerprint dimension: 1,904 bytes a tile with the default model). FAISS's
``IndexRefine`` would hold them all in RAM while adding (19 GB at 10 M tiles), so the build
streams them to ``ann/fine-*.codes`` chunk by chunk (`CodeFile`), beside the trained codec
(``ann/fine-*.faiss``), and the FAISS index holds the first stage alone.

Ranking reads the finer codes of the first stage's candidates (memory-mapped). Rows up to a
page are padded to a power of two, so that each costs one page (`row_stride`). `Refiner` asks
the kernel for all the candidates' pages at once (``madvise(MADV_WILLNEED)``) so that the
reads can overlap, and marks the region ``MADV_RANDOM`` so that a fault does not read the
pages around it. That helps little on a disk that serves reads one by one
(docs/benchmarks/search-index.md), so few candidates are read (`tilesearch.ann.REFINE_MIN`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch.store import PAGE, advise_random, prefetch_rows


def codec_name(refine: str) -> str:
    """The FAISS factory string of a refine stage: ``",Refine(SQ8)"`` -> ``"SQ8"``,
    ``",RFlat"`` -> ``"Flat"``."""
    if refine.startswith(",Refine(") and refine.endswith(")"):
        return refine[len(",Refine("):-1]
    if refine == ",RFlat":
        return "Flat"
    raise ValueError(f"not a refine stage: {refine!r}")


def row_stride(size: int) -> int:
    """Bytes a code of `size` bytes takes in a code file: the next power of two up to a page,
    so that no code straddles two pages and a candidate costs one read from disk (1,904-byte
    codes: 2,048, 7.6 % more on disk, against 1.46 pages a candidate packed)."""
    if size > PAGE:
        return size
    return 1 << (size - 1).bit_length()


class CodeFile:
    """Appends finer codes to a file, `stride` bytes a row, from row `start` on (rows past it
    are cut first), so that no more than one chunk of them is ever in memory."""

    def __init__(self, codec: Any, path: Path, start: int, stride: int) -> None:
        self.codec, self.path, self.stride = codec, path, stride
        self._f = open(path, "r+b" if path.exists() else "wb")  # noqa: SIM115 - closed in close()
        self._f.truncate(start * stride)
        self._f.seek(0, os.SEEK_END)

    def add(self, x: np.ndarray) -> None:
        """Encode unit vectors `x` and append their codes."""
        codes = np.asarray(self.codec.sa_encode(x))
        rows = np.zeros((len(codes), self.stride), np.uint8)
        rows[:, :codes.shape[1]] = codes
        self._f.write(rows.tobytes())

    def close(self) -> None:
        """Flush the codes to disk (fsync) and close the file."""
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()


class Refiner:
    """Ranks candidate ids from a first-stage index by finer codes of unit vectors (`codes`:
    one row a tile, possibly a view of the wider rows of a code file)."""

    def __init__(self, base: Any, fine: Any, codes: np.ndarray, mapped: bool,
                 keep: Any = None) -> None:
        self._keep = keep  # holds the C++ objects or the map the views below point into
        self.base, self.fine, self.codes, self.mapped = base, fine, codes, mapped
        if mapped:  # no read-around on a fault: only the pages asked for are read and kept
            advise_random(codes)

    @classmethod
    def open(cls, base: Any, codec_path: Path, codes_path: Path, count: int,
             faiss: Any, stride: int) -> Refiner:
        """The finer codes of tiles ``0 .. count - 1`` in `codes_path`, memory-mapped;
        `stride` bytes a row."""
        fine = faiss.read_index(str(codec_path))
        size = int(fine.sa_code_size())
        have = codes_path.stat().st_size // stride
        if have < count:
            raise ValueError(f"{codes_path} holds {have} codes, the index {count}")
        rows = np.memmap(codes_path, np.uint8, "r", shape=(count, stride))
        return cls(base, fine, rows[:, :size], True, keep=rows)

    @property
    def code_bytes(self) -> int:
        return int(self.base.sa_code_size()) + int(self.fine.sa_code_size())

    def decode(self, ids: np.ndarray) -> np.ndarray:
        """Unit vectors of `ids` as the finer codes keep them."""
        return np.asarray(self.fine.sa_decode(np.ascontiguousarray(self.codes[ids])))

    def prefetch(self, ids: np.ndarray) -> None:
        """Start reading the pages holding the finer codes of `ids` (no-op when in RAM)."""
        if self.mapped:
            prefetch_rows(self.codes, ids)

    def rank(self, q: np.ndarray, ids: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        """The `m` best of candidate `ids` for unit query `q` (1, d): ids and squared L2."""
        ids = ids[ids >= 0]
        self.prefetch(ids)
        d = ((self.decode(ids) - q) ** 2).sum(1)
        order = np.lexsort((ids, d))[:m]
        return ids[order], d[order]
