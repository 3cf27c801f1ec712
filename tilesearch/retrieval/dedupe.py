"""Distinct places: hits overlapping a better-ranked hit or the query tiles are left out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tilesearch.records import Footprint, TileMeta
from tilesearch.retrieval.results import Hit
from tilesearch.store import Store


class _Footprints:
    """Tiles kept so far, hashed by image and grid cell, so an overlap test is O(1).

    Cells are `size` px (at least the tile size), so a tile can only overlap tiles hashed in
    its own cell or the 8 around it."""

    def __init__(self, size: int, tiles: Sequence[TileMeta | Footprint] = ()) -> None:
        self.size = max([size] + [max(t.window.width, t.window.height) for t in tiles])
        self.cells: dict[tuple[int, int, int], list[TileMeta | Footprint]] = {}
        for t in tiles:
            self.add(t)

    def _cell(self, t: TileMeta | Footprint) -> tuple[int, int, int]:
        return t.image_id, t.window.col_off // self.size, t.window.row_off // self.size

    def add(self, t: TileMeta | Footprint) -> None:
        self.cells.setdefault(self._cell(t), []).append(t)

    def overlaps(self, t: TileMeta | Footprint) -> bool:
        image, cx, cy = self._cell(t)
        return any(_overlap(t, other)
                   for dx in (-1, 0, 1) for dy in (-1, 0, 1)
                   for other in self.cells.get((image, cx + dx, cy + dy), ()))


def _filter(store: Store, cand: np.ndarray, dist: np.ndarray, k: int,
            exclude: list[TileMeta], suppress: bool) -> list[Hit]:
    excluded = _Footprints(store.tile_size, exclude)
    d = dict(zip(cand.tolist(), dist.tolist(), strict=True))
    kept: list[int] = []
    seen = _Footprints(store.tile_size)
    start, step = 0, 2 * k + 8
    while start < len(cand) and len(kept) < k:
        for fp in store.footprints(cand[start:start + step].tolist()):
            if excluded.overlaps(fp) or (suppress and seen.overlaps(fp)):
                continue
            kept.append(fp.tile_id)
            seen.add(fp)
            if len(kept) == k:
                break
        start, step = start + step, step * 2
    return [Hit(i + 1, float(d[t.tile_id]), t) for i, t in enumerate(store.tiles(kept))]


def _overlap(a: TileMeta | Footprint, b: TileMeta | Footprint) -> bool:
    return a.image_id == b.image_id and a.window.overlaps(b.window)
