"""Places, not tiles: tiles above the threshold that overlap (the same image, windows sharing
pixels) are merged into one detection, the union of their footprints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tilesearch.store import Store


@dataclass(frozen=True)
class Detection:
    """One place: its member tiles, their best and mean score, the union of their lon/lat
    footprints (a shapely geometry, None without georeferencing) and its centre."""

    tiles: tuple[int, ...]
    max_score: float
    mean_score: float
    geometry: Any

    @property
    def centre(self) -> tuple[float, float] | None:
        if self.geometry is None:
            return None
        c = self.geometry.centroid
        return float(c.x), float(c.y)


def detections(store: Store, ids: np.ndarray, scores: np.ndarray) -> list[Detection]:
    """The detections formed by tiles `ids` (with their `scores`), best first."""
    groups = _groups(store, np.asarray(ids, np.int64))
    out = [_detection(store, g, scores) for g in groups]
    return sorted(out, key=lambda d: -d.max_score)


def _groups(store: Store, ids: np.ndarray) -> list[list[int]]:
    """Connected sets of overlapping tiles among `ids` (union-find over a window grid)."""
    if not len(ids):
        return []
    win = store.windows()[ids]
    parent = list(range(len(ids)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    cell = max(1, store.stride)
    buckets: dict[tuple[int, int, int], list[int]] = {}
    for i, (image, col, row, w, h) in enumerate(win):
        for cc in range(col // cell, (col + w - 1) // cell + 1):
            for rr in range(row // cell, (row + h - 1) // cell + 1):
                for j in buckets.setdefault((int(image), cc, rr), []):
                    parent[root(i)] = root(j)
                buckets[(int(image), cc, rr)].append(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(ids)):
        groups.setdefault(root(i), []).append(int(ids[i]))
    return list(groups.values())


def _detection(store: Store, tiles: list[int], scores: np.ndarray) -> Detection:
    import shapely
    from shapely.geometry import box

    boxes = [box(*m.lonlat_bounds) for m in store.tiles(tiles) if m.lonlat_bounds]
    s = scores[np.asarray(tiles)]
    return Detection(tuple(sorted(tiles)), float(s.max()), float(s.mean()),
                     shapely.union_all(boxes) if boxes else None)
