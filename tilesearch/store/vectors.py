"""The store's fingerprints: memory maps of the vector and norm files, scattered rows, dropping
full-precision rows once a search index holds their codes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch.errors import StoreError
from tilesearch.store.files import MANIFEST, _write_json
from tilesearch.store.pages import advise_random


class Vectors:
    """Access to the fingerprints of an open store (a part of `Store`)."""

    path: Path
    manifest: dict[str, Any]
    count: int
    full_from: int
    dim: int
    _mmap: tuple[np.ndarray, np.ndarray] | None
    _rmap: np.ndarray | None

    def _need_writable(self) -> None:
        raise NotImplementedError

    @property
    def vectors_file(self) -> str:
        return str(self.manifest.get("vectors_file", "vectors.f32"))

    def vectors(self) -> np.ndarray:
        """All fingerprints as a read-only memory map of shape (count, dim); StoreError when
        some were dropped for compact codes (see `full_vectors` and `ann.fingerprints`)."""
        if self.full_from:
            raise StoreError(f"{self.path}: the full-precision fingerprints of tiles below "
                             f"{self.full_from} were dropped (build-index --drop-full); this "
                             "needs them: re-index into a store kept with full vectors")
        return self._maps()[0]

    def full_vectors(self, start: int, stop: int) -> np.ndarray:
        """Full-precision fingerprints of tiles ``start .. stop - 1`` (all >= `full_from`)."""
        self._need_full(start, stop - 1)
        return self._maps()[0][start - self.full_from:stop - self.full_from]

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Full-precision fingerprints of tiles `ids` (all >= `full_from`), as a new array.
        Only their pages are read from disk (`tilesearch.store.pages.advise_random`): a search
        re-ranking 128 scattered tiles of a cold store reads those, not megabytes around
        each. They are not prefetched (``MADV_WILLNEED``): on pages already in memory, the
        usual case in a served store, asking for them is pure overhead."""
        ids = np.asarray(ids, np.int64)
        if len(ids):
            self._need_full(int(ids.min()), int(ids.max()))
        return np.asarray(self._scattered()[ids - self.full_from])

    def _need_full(self, first: int, last: int) -> None:
        """StoreError unless tiles ``first .. last`` all keep full-precision fingerprints."""
        if first < self.full_from or last >= self.count or first > last + 1:
            raise StoreError(f"{self.path}: no full-precision fingerprints for tiles "
                             f"{first}..{last} (kept: {self.full_from}..{self.count - 1})")

    def _scattered(self) -> np.ndarray:
        """A second map of the vectors, for scattered rows (`rows`): faults read no more than
        their page, while `vectors` keeps the kernel's readahead for scans."""
        if self._rmap is None or len(self._rmap) != self.count - self.full_from:
            self._rmap = self._map_vectors()
            advise_random(self._rmap)
        return self._rmap

    def _map_vectors(self) -> np.ndarray:
        """The kept full-precision vectors, memory-mapped (rows from `full_from` on)."""
        rows = self.count - self.full_from
        if not rows:
            return np.zeros((0, self.dim), np.float32)
        return np.memmap(self.path / self.vectors_file, dtype=np.float32, mode="r",
                         shape=(rows, self.dim))

    def drop_full_before(self, n: int) -> None:
        """Keep full-precision fingerprints only for tiles from `n` on (the others must be in
        a built index). Crash-safe: the kept rows go to a new file, the manifest switches to
        it in one atomic write, then the old file is removed."""
        self._need_writable()
        n = min(n, self.count)
        if n <= self.full_from:
            return
        old = self.path / self.vectors_file
        new_name = f"vectors-{n}.f32"
        tmp = self.path / (new_name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(np.ascontiguousarray(self.full_vectors(n, self.count)).tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path / new_name)
        self._mmap = self._rmap = None
        self.manifest.update(full_from=n, vectors_file=new_name)
        _write_json(self.path / MANIFEST, self.manifest)
        self.full_from = n
        if old.name != new_name:
            old.unlink(missing_ok=True)

    def sq_norms(self) -> np.ndarray:
        """Squared L2 norm of each fingerprint, shape (count,)."""
        return self._maps()[1]

    def _maps(self) -> tuple[np.ndarray, np.ndarray]:
        if self._mmap is None or len(self._mmap[1]) != self.count:
            nrm = (np.memmap(self.path / "norms.f32", dtype=np.float32, mode="r",
                             shape=(self.count,)) if self.count else np.zeros(0, np.float32))
            self._mmap = (self._map_vectors(), nrm)
        return self._mmap


