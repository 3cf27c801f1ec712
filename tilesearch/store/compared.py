"""What a search compares: each tile's raw fingerprint, or its augmented copy where the store
has database-side augmentation (`tilesearch.ann.augment`); the one place that decides it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch.errors import StoreError

AUGMENT_KEY = "augment"
"""The manifest entry naming the augmented vectors (file, k, alpha, count)."""


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 length (a float32 copy, float64 kept as float64)."""
    x = np.array(x, dtype=np.result_type(np.asarray(x).dtype, np.float32), copy=True)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


class Compared:
    """The vectors searches compare, of an open store (a part of `Store`)."""

    path: Path
    manifest: dict[str, Any]
    dim: int
    full_from: int
    _augmented_map: tuple[str, np.ndarray] | None

    def full_vectors(self, start: int, stop: int) -> np.ndarray:
        raise NotImplementedError

    def rows(self, ids: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def sq_norms(self) -> np.ndarray:
        raise NotImplementedError

    @property
    def augmentation(self) -> dict[str, Any] | None:
        """The manifest's record of the store's augmentation (k, alpha, count, file), or None."""
        e = self.manifest.get(AUGMENT_KEY)
        return dict(e) if e else None

    def forget_augmented(self) -> None:
        """Drop the map of the augmented vectors (their file was replaced or removed)."""
        self._augmented_map = None

    def augmented(self) -> np.ndarray | None:
        """The augmented vectors (rows 0 .. count - 1 of the augmentation), memory-mapped."""
        e = self.augmentation
        if not e or not e.get("file"):
            return None
        hit = self._augmented_map
        if hit is None or hit[0] != e["file"]:
            path = self.path / e["file"]
            if not path.exists():
                raise StoreError(f"{path}: augmented fingerprints missing; run 'tilesearch "
                                 f"build-index {self.path} --augment {e['k']}' again")
            hit = (e["file"], np.memmap(path, np.float32, "r",
                                        shape=(int(e["count"]), self.dim)))
            self._augmented_map = hit
        return hit[1]

    def search_segments(self, start: int, stop: int
                        ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(first id, vectors, squared norms) covering tiles ``start .. stop - 1`` as searches
        see them: augmented where the store has them, raw after (all >= `full_from`)."""
        aug = self.augmented()
        cut = min(stop, len(aug)) if aug is not None else start
        if cut > start:
            assert aug is not None
            yield start, aug[start:cut], np.ones(cut - start, np.float32)
        if stop > max(start, cut):
            lo = max(start, cut)
            yield lo, self.full_vectors(lo, stop), self.sq_norms()[lo:stop]

    def search_rows(self, ids: np.ndarray) -> np.ndarray:
        """Search vectors of tiles `ids` (all >= `full_from`)."""
        aug = self.augmented()
        out = self.rows(ids)
        if aug is not None:
            inside = ids < len(aug)
            out[inside] = aug[ids[inside]]
        return out
