"""Places, not tiles: tiles above the threshold that overlap are merged into one detection,
the union of their footprints. Tiles of one image overlap when their windows share pixels;
tiles of two images (overlapping surveys) when their lon/lat boxes share more than
`ACROSS` of the smaller one's area."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tilesearch.geo import METRES_PER_DEGREE
from tilesearch.retrieval import ACROSS
from tilesearch.store import Store

SHIFT = 1 << 32
"""Pixel boxes of image i are shifted by i * SHIFT columns so that images never touch."""


@dataclass(frozen=True)
class Detection:
    """One place: its member tiles, their best and mean score, the union of their lon/lat
    footprints (a shapely geometry, None without georeferencing), its area in square metres
    (None without georeferencing) and its centre."""

    tiles: tuple[int, ...]
    max_score: float
    mean_score: float
    geometry: Any
    area_m2: float | None = None

    @property
    def centre(self) -> tuple[float, float] | None:
        if self.geometry is None:
            return None
        c = self.geometry.centroid
        return float(c.x), float(c.y)


def detections(store: Store, ids: np.ndarray, scores: np.ndarray, *,
               windows: np.ndarray | None = None,
               boxes: np.ndarray | None = None) -> list[Detection]:
    """The detections formed by tiles `ids` (with every tile's `scores`), best first.
    `windows` and `boxes` (`Store.windows()`, `Store.lonlat_boxes()`) may be passed when
    the caller keeps them, as the web app's threshold slider does."""
    ids = np.asarray(ids, np.int64)
    if not len(ids):
        return []
    win = (store.windows() if windows is None else windows)[ids]
    box = (store.lonlat_boxes() if boxes is None else boxes)[ids]
    labels = groups(win, box)
    order = np.argsort(labels, kind="stable")
    cuts = np.flatnonzero(np.diff(labels[order])) + 1
    out = [_detection(ids[g], box[g], scores) for g in np.split(order, cuts)]
    return sorted(out, key=lambda d: (-d.max_score, d.tiles[0]))


def groups(windows: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """A group number per tile: connected sets of overlapping tiles, from their (image, col,
    row, width, height) `windows` and lon/lat `boxes` (NaN where unknown)."""
    import shapely
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(windows)
    img, col, row, w, h = (windows[:, i].astype(np.float64) for i in range(5))
    corners = np.stack([col + img * SHIFT, row, col + w + img * SHIFT, row + h], axis=1)
    px = shapely.box(*corners.T)
    a, b = shapely.STRtree(px).query(px, predicate="intersects")
    keep = (a < b) & (_overlap(corners[a], corners[b]) > 0)
    pairs = [(a[keep], b[keep])]
    known = np.flatnonzero(~np.isnan(boxes).any(axis=1))
    if len(known) and len(np.unique(img[known])) > 1:
        kb = boxes[known]
        geo = shapely.box(*kb.T)
        ga, gb = shapely.STRtree(geo).query(geo, predicate="intersects")
        ga, gb = ga[ga < gb], gb[ga < gb]
        ga, gb = ga[img[known][ga] != img[known][gb]], gb[img[known][ga] != img[known][gb]]
        common = _overlap(kb[ga], kb[gb])
        area = (kb[:, 2] - kb[:, 0]) * (kb[:, 3] - kb[:, 1])
        smaller = np.minimum(area[ga], area[gb])
        over = common > ACROSS * smaller
        pairs.append((known[ga[over]], known[gb[over]]))
    i = np.concatenate([p[0] for p in pairs])
    j = np.concatenate([p[1] for p in pairs])
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    return np.asarray(connected_components(graph, directed=False)[1])


def _overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Areas of the intersections of axis-aligned boxes `a[i]` and `b[i]` (min x, min y,
    max x, max y), by arithmetic: exact for boxes, and far cheaper than shapely's
    intersections on the web slider's path (docs/benchmarks/find.md#speed)."""
    w = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    h = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    return np.asarray(np.clip(w, 0, None) * np.clip(h, 0, None))


def _detection(tiles: np.ndarray, boxes: np.ndarray, scores: np.ndarray) -> Detection:
    import shapely

    s = scores[tiles]
    ok = boxes[~np.isnan(boxes).any(axis=1)]
    geom = shapely.union_all(shapely.box(*ok.T)) if len(ok) else None
    return Detection(tuple(sorted(int(t) for t in tiles)), float(s.max()), float(s.mean()),
                     geom, _area_m2(geom) if geom is not None else None)


def _area_m2(geom: Any) -> float:
    """Area of a small lon/lat geometry in square metres: degrees scaled to metres at its
    centroid's latitude (a local equirectangular view; places are metres to kilometres)."""
    lat = np.radians(geom.centroid.y)
    return float(geom.area * METRES_PER_DEGREE**2 * np.cos(lat))
