"""Distinct places: hits overlapping a better-ranked hit or the query tiles are left out.
Within an image two tiles overlap when their windows share pixels; across images (overlapping
flights, a re-flown area, a VRT beside its sources) when their lon/lat boxes share more than
`ACROSS` of the smaller box."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tilesearch.records import Footprint, TileMeta
from tilesearch.retrieval.results import Hit
from tilesearch.store import Store

ACROSS = 0.1
"""Share of the smaller lon/lat box two tiles of different images must have in common to be
one place (reprojected boxes of merely adjacent tiles touch or overlap a sliver)."""
Box = tuple[float, float, float, float]


def same_place(a: Box, b: Box) -> bool:
    """Whether lon/lat boxes `a` and `b` (of tiles of different images) are one place."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return False
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h > ACROSS * smaller


class _GeoBoxes:
    """Lon/lat boxes of tiles kept so far, hashed by grid cell (at least the largest box
    seen, re-hashed when a larger one comes), so a test looks at the 9 cells around."""

    def __init__(self) -> None:
        self.size = 0.0
        self.boxes: list[tuple[int, Box]] = []
        self.cells: dict[tuple[int, int], list[tuple[int, Box]]] = {}

    def _cell(self, box: Box) -> tuple[int, int]:
        return int(box[0] // self.size), int(box[1] // self.size)

    def add(self, image_id: int, box: Box) -> None:
        extent = max(box[2] - box[0], box[3] - box[1])
        self.boxes.append((image_id, box))
        if extent > self.size:
            self.size = extent * 2 or 1e-9
            self.cells = {}
            for item in self.boxes:
                self.cells.setdefault(self._cell(item[1]), []).append(item)
        else:
            self.cells.setdefault(self._cell(box), []).append((image_id, box))

    def overlaps(self, image_id: int, box: Box) -> bool:
        if not self.boxes or max(box[2] - box[0], box[3] - box[1]) > self.size:
            return any(i != image_id and same_place(box, b) for i, b in self.boxes)
        cx, cy = self._cell(box)
        return any(i != image_id and same_place(box, b)
                   for dx in (-1, 0, 1) for dy in (-1, 0, 1)
                   for i, b in self.cells.get((cx + dx, cy + dy), ()))


class _Footprints:
    """Tiles kept so far, hashed by image and grid cell, so an overlap test is O(1).

    Cells are `size` px (at least the tile size), so a tile can only overlap tiles hashed in
    its own cell or the 8 around it."""

    def __init__(self, size: int, tiles: Sequence[TileMeta | Footprint] = (),
                 boxes: dict[int, Box] | None = None) -> None:
        self.size = max([size] + [max(t.window.width, t.window.height) for t in tiles])
        self.cells: dict[tuple[int, int, int], list[TileMeta | Footprint]] = {}
        self.geo = _GeoBoxes()
        for t in tiles:
            self.add(t, (boxes or {}).get(t.tile_id))

    def _cell(self, t: TileMeta | Footprint) -> tuple[int, int, int]:
        return t.image_id, t.window.col_off // self.size, t.window.row_off // self.size

    def add(self, t: TileMeta | Footprint, box: Box | None = None) -> None:
        self.cells.setdefault(self._cell(t), []).append(t)
        if box is not None:
            self.geo.add(t.image_id, box)

    def overlaps(self, t: TileMeta | Footprint, box: Box | None = None) -> bool:
        image, cx, cy = self._cell(t)
        return any(_overlap(t, other)
                   for dx in (-1, 0, 1) for dy in (-1, 0, 1)
                   for other in self.cells.get((image, cx + dx, cy + dy), ())) or (
            box is not None and self.geo.overlaps(t.image_id, box))


def _filter(store: Store, cand: np.ndarray, dist: np.ndarray, k: int,
            exclude: list[TileMeta], suppress: bool) -> list[Hit]:
    excluded = _Footprints(store.tile_size, exclude,
                           store.lonlat_boxes_of([t.tile_id for t in exclude]))
    d = dict(zip(cand.tolist(), dist.tolist(), strict=True))
    kept: list[int] = []
    seen = _Footprints(store.tile_size)
    start, step = 0, 2 * k + 8
    while start < len(cand) and len(kept) < k:
        chunk = cand[start:start + step].tolist()
        boxes = store.lonlat_boxes_of(chunk)
        for fp in store.footprints(chunk):
            box = boxes.get(fp.tile_id)
            if excluded.overlaps(fp, box) or (suppress and seen.overlaps(fp, box)):
                continue
            kept.append(fp.tile_id)
            seen.add(fp, box)
            if len(kept) == k:
                break
        start, step = start + step, step * 2
    return [Hit(i + 1, float(d[t.tile_id]), t) for i, t in enumerate(store.tiles(kept))]


def _overlap(a: TileMeta | Footprint, b: TileMeta | Footprint) -> bool:
    return a.image_id == b.image_id and a.window.overlaps(b.window)
