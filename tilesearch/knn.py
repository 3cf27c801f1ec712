"""Exact k-nearest-neighbour search over a store, by tile, by image file or by lon/lat."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch import ann, augment
from tilesearch.errors import QueryError, StoreError
from tilesearch.models.base import Fingerprinter
from tilesearch.records import Footprint, TileMeta
from tilesearch.store import Store

METRICS = ("euclidean", "cosine")
DEFAULT_METRIC = "cosine"
"""Cosine ranks better than euclidean on every measure we took (docs/quality.md)."""
_CHUNK = 1 << 16
RAW_WEIGHT = 0.3
"""Share of the raw distance in rankings on an augmented store, by default (`mix_raw`): turned
and mirrored copies find their source again (rank 1: 0.75 -> 1.00), at the cost of about
0.01 mAP on UC Merced (docs/quality.md). The weight the k-reciprocal re-ranking paper gives
the original distance (Zhong et al. 2017); not tuned on the evaluation labels."""


@dataclass
class Query:
    """A query fingerprint and where it came from."""

    vector: np.ndarray = field(repr=False)
    description: str
    tile: TileMeta | None = None
    pixels: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Hit:
    """One result: its rank (1-based), distance to the query, and the tile."""

    rank: int
    distance: float
    tile: TileMeta

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "distance": self.distance, **self.tile.to_dict()}


@dataclass
class SearchResult:
    """The ranked hits of one query."""

    query: Query
    hits: list[Hit]
    metric: str
    store: str

    def to_dict(self) -> dict[str, Any]:
        q = self.query
        return {
            "store": self.store, "metric": self.metric, "query": q.description,
            "query_tile": q.tile.to_dict() if q.tile else None,
            "results": [h.to_dict() for h in self.hits],
        }


def distances(store: Store, vector: np.ndarray, metric: str = DEFAULT_METRIC,
              start: int = 0, stop: int | None = None) -> np.ndarray:
    """Exact distance from `vector` to the fingerprints of tiles ``start .. stop - 1`` (default
    all) as squared L2 or 1 - cosine; those tiles must keep full-precision vectors. On an
    augmented store the tiles' augmented vectors are compared (`tilesearch.augment`)."""
    q = _check_query(store, vector, metric)
    stop = store.count if stop is None else stop
    out = np.empty(stop - start, dtype=np.float32)
    for first, vecs, norms in augment.segments(store, start, stop):
        dots = np.empty(len(norms), dtype=np.float32)
        for lo in range(0, len(norms), _CHUNK):
            dots[lo:lo + _CHUNK] = vecs[lo:lo + _CHUNK] @ q
        out[first - start:first - start + len(norms)] = _from_dots(dots, norms, q, metric)
    return out


def _check_query(store: Store, vector: np.ndarray, metric: str) -> np.ndarray:
    if metric not in METRICS:
        raise QueryError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    q = np.asarray(vector, dtype=np.float32).reshape(-1)
    if q.shape[0] != store.dim:
        raise QueryError(f"query fingerprint has {q.shape[0]} values, the store's "
                         f"model gives {store.dim}")
    if metric != "cosine" and augment.entry(store):
        raise QueryError(f"{store.path} is augmented (build-index --augment), which compares "
                         "unit vectors: use --metric cosine")
    return q


def _from_dots(dots: np.ndarray, norms: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    qq = float(q @ q)
    if metric == "euclidean":
        return np.maximum(norms - 2.0 * dots + qq, 0.0)
    denom = np.sqrt(np.maximum(norms, 1e-30)) * math.sqrt(max(qq, 1e-30))
    return 1.0 - dots / denom


def fingerprints(store: Store, ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """Fingerprints of tiles `ids` as searches compare them: full precision where the store
    keeps them (augmented on an augmented store), else decoded from the search index's codes
    (scaled to the tile's stored norm)."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    full = ids >= store.full_from
    if full.all():  # the common case: no second copy
        return np.asarray(augment.rows(store, ids), np.float32)
    out = np.empty((len(ids), store.dim), np.float32)
    if full.any():
        out[full] = augment.rows(store, ids[full])
    index = ann.cached(store)
    if index is None:
        raise StoreError(f"{store.path}: tiles below {store.full_from} have no fingerprints")
    dec = index.decode(ids[~full])
    out[~full] = dec * np.sqrt(store.sq_norms()[ids[~full]])[:, None]
    return out


def ranked(store: Store, vector: np.ndarray, m: int, metric: str = DEFAULT_METRIC,
           allowed: np.ndarray | None = None, exact: bool = False
           ) -> tuple[np.ndarray, np.ndarray]:
    """Ids and distances of the `m` nearest tiles, best first (ties by id).

    Uses the store's search index when it has one (cosine only) and `exact` is false: codes
    give candidates, re-ranked exactly where full vectors are kept, and tiles appended since
    the index was built are scanned exactly and merged in. Otherwise an exact scan."""
    q = _check_query(store, vector, metric)
    index = None if exact else ann.cached(store)
    if index is not None and metric != index.spec.metric:
        if store.full_from:
            raise QueryError(f"{store.path} keeps only compact codes, which answer "
                             f"{index.spec.metric} queries; use --metric {index.spec.metric}")
        index = None  # full vectors are kept: another metric is answered exactly
    if index is not None:
        ids, d = _ranked_ann(store, index, q, m, allowed)
        start = index.count
    else:
        ids, d, start = np.zeros(0, np.int64), np.zeros(0, np.float32), 0
    if start < store.count:
        tail = distances(store, q, metric, start)
        if allowed is not None:
            tail[~allowed[start:]] = np.inf
        top = _top(tail, m)
        ids = np.concatenate([ids, top + start])
        d = np.concatenate([d, tail[top]])
    keep = np.isfinite(d)
    ids, d = ids[keep], d[keep]
    order = np.lexsort((ids, d))[:m]
    return ids[order], d[order]


def _ranked_ann(store: Store, index: ann.AnnIndex, q: np.ndarray, m: int,
                allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    rerank = store.full_from == 0
    wanted = max(int(m * ann.RERANK_FACTOR), ann.RERANK_MIN) if rerank else m
    ids, d = index.search(q, wanted, allowed, needed=m)
    if rerank and len(ids):
        x = fingerprints(store, ids)
        d = _from_dots(x @ q, np.einsum("nd,nd->n", x, x), q, "cosine")
    return ids, d


def default_raw_weight(store: Store) -> float:
    """`RAW_WEIGHT` on an augmented store that keeps every raw fingerprint, else 0."""
    return RAW_WEIGHT if augment.entry(store) is not None and store.full_from == 0 else 0.0


def check_raw_weight(weight: float, metric: str) -> None:
    """QueryError unless `weight` is a usable raw-distance weight for `metric`."""
    if not 0.0 <= weight <= 1.0:
        raise QueryError(f"the raw weight must be within 0..1, got {weight}")
    if weight > 0 and metric != "cosine":
        raise QueryError("mixing in the raw distance compares unit vectors: use --metric cosine")


def raw_fingerprints(store: Store, ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """The stored fingerprints of tiles `ids` as the model made them (never augmented)."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if len(ids) and int(ids.min()) < store.full_from:
        raise QueryError(f"{store.path} keeps only compact codes below tile {store.full_from}, "
                         "so their raw fingerprints cannot be mixed in; use --raw-weight 0")
    return store.rows(ids)


def raw_distances(store: Store, vector: np.ndarray) -> np.ndarray:
    """1 - cosine from `vector` to every tile's raw fingerprint (exact scan)."""
    q = np.asarray(vector, dtype=np.float32).reshape(-1)
    out = np.empty(store.count, dtype=np.float32)
    for lo in range(0, store.count, _CHUNK):
        x = raw_fingerprints(store, np.arange(lo, min(store.count, lo + _CHUNK)))
        out[lo:lo + len(x)] = _from_dots(x @ q, store.sq_norms()[lo:lo + len(x)], q, "cosine")
    return out


def blend(raw: np.ndarray, d: np.ndarray, weight: float) -> np.ndarray:
    """``weight * raw + (1 - weight) * d``: the ranking distance with the raw one mixed in."""
    return weight * raw + (1.0 - weight) * d


def mix_raw(store: Store, raw_query: np.ndarray, ids: np.ndarray, d: np.ndarray,
            weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Candidates `ids` at cosine distances `d` (after augmentation or expansion) re-sorted by
    `blend` of ``1 - cos(raw query, raw tile)`` and `d`.

    Augmentation and expansion move every vector toward its neighbours, so the very place a
    query shows can lose rank 1 to its look-alikes; the raw distance, weighted in, keeps it
    there (docs/quality.md)."""
    if not len(ids):
        return ids, d
    x = raw_fingerprints(store, ids)
    raw = _from_dots(x @ raw_query, np.einsum("nd,nd->n", x, x), raw_query, "cosine")
    mixed = blend(raw, d, weight).astype(np.float32)
    order = np.lexsort((ids, mixed))
    return ids[order], mixed[order]


def index_recall(store: Store, queries: np.ndarray, k: int = 10) -> float:
    """Mean recall@k of the store's search index against exact search, tie-aware: a returned
    tile counts when its exact distance is within 1e-6 of the exact k-th nearest's, so ties
    at the k-th place do not count as misses."""
    found = 0
    for q in np.atleast_2d(queries):
        d = distances(store, q)
        kth = np.partition(d, k - 1)[k - 1]
        found += int((d[ranked(store, q, k)[0]] <= kth + 1e-6).sum())
    return found / (k * len(np.atleast_2d(queries)))


def _top(d: np.ndarray, m: int) -> np.ndarray:
    """Indices of the m smallest values of `d`, in any order."""
    return np.argpartition(d, m - 1)[:m] if m < len(d) else np.arange(len(d))


def expand_query(store: Store, vector: np.ndarray, k: int, alpha: float = 3.0) -> np.ndarray:
    """Alpha query expansion: the mean of the query and its `k` nearest stored fingerprints
    (cosine), each weighted by its cosine similarity to the query to the power `alpha`.

    Computed on L2-normalised vectors; the result is L2-normalised.
    """
    q = np.asarray(vector, dtype=np.float32).reshape(-1)
    top, d = ranked(store, q, k, "cosine")
    if len(top) < 1:
        return q
    x = augment.unit(fingerprints(store, top))
    return augment.combine(augment.unit(q[None]), x[None], (1.0 - d)[None], alpha)[0]


def combine_examples(positives: np.ndarray, negatives: np.ndarray | None = None,
                     gamma: float = 0.5) -> np.ndarray:
    """One query from several examples (Rocchio): ``mean(P) - gamma * mean(N)`` over the
    L2-normalised positive and negative fingerprints, scaled back to the positives' mean norm.

    The query moves toward what the positives share and away from what the negatives share.
    """
    p = np.atleast_2d(np.asarray(positives, dtype=np.float32))
    if len(p) == 0:
        raise QueryError("give at least one positive example")
    norms = np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
    q = (p / norms).mean(0)
    if negatives is not None and len(negatives):
        n = np.atleast_2d(np.asarray(negatives, dtype=np.float32))
        q = q - gamma * (n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)).mean(0)
    return q / max(float(np.linalg.norm(q)), 1e-12) * float(norms.mean())


def _first_fetch(store: Store, k: int, exact: bool) -> int:
    """How many ranked tiles `nearest` asks for first: enough that overlap suppression rarely
    needs a second round (16 k, and 4 k + 1,024 for a large k), or 4 k where every candidate
    may cost a read from disk (a refining index's finer codes); more are fetched when too few
    hits remain."""
    index = None if exact else ann.cached(store)
    if index is not None and index.refiner is not None:
        return max(4 * k, ann.REFINE_MIN)
    return max(min(16 * k, 4 * k + 1024), 64)


def nearest(store: Store, vector: np.ndarray, k: int = 10, metric: str = DEFAULT_METRIC,
            exclude: TileMeta | Sequence[TileMeta] | None = None,
            suppress_overlaps: bool = True, expand: int = 0, alpha: float = 3.0,
            allowed: np.ndarray | None = None, exact: bool = False,
            raw_weight: float = 0.0, raw_query: np.ndarray | None = None) -> list[Hit]:
    """The `k` nearest tiles, skipping tiles overlapping `exclude` (same image) and, when
    `suppress_overlaps`, any tile overlapping a better-ranked hit, so hits are distinct places.

    With `expand` > 0 the query is first replaced by its alpha query expansion over that many
    neighbours (see `expand_query`). `allowed`, a boolean mask over tile ids (see
    `filters.allowed_mask`), restricts the ranking to those tiles. The store's search index
    answers when it has one, unless `exact` (see `ranked`). `raw_weight` > 0 re-ranks the
    shortlist by a mix with the raw distance (see `mix_raw`); `raw_query` is the query before
    augmentation (default: `vector`, before expansion)."""
    if k < 1:
        raise QueryError(f"k must be at least 1, got {k}")
    check_raw_weight(raw_weight, metric)
    raw = np.asarray(vector if raw_query is None else raw_query, np.float32).reshape(-1)
    mixing = raw_weight > 0 and (expand > 0 or augment.entry(store) is not None)
    if expand > 0:
        scale = float(np.linalg.norm(vector)) if metric == "euclidean" else 1.0
        vector = expand_query(store, vector, expand, alpha) * scale
    excluded = [exclude] if isinstance(exclude, TileMeta) else list(exclude or [])
    n = store.count if allowed is None else int(allowed.sum())
    if n == 0:
        return []
    m = min(n, _first_fetch(store, k, exact))
    while True:
        ids, d = ranked(store, vector, m, metric, allowed, exact)
        if mixing:
            ids, d = mix_raw(store, raw, ids, d, raw_weight)
        hits = _filter(store, ids, d, k, excluded, suppress_overlaps)
        if len(hits) >= k or m >= n:
            break
        m = min(n, m * 4)
    if metric == "euclidean":
        hits = [Hit(h.rank, math.sqrt(h.distance), h.tile) for h in hits]
    return hits


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


def check_tile_id(store: Store, tile_id: int) -> None:
    """QueryError unless `tile_id` is a tile of the store."""
    if not 0 <= tile_id < store.count:
        raise QueryError(f"no tile {tile_id} in {store.path} "
                         f"(tile ids run from 0 to {store.count - 1})")


def tile_query(store: Store, tile_id: int) -> Query:
    """Query by a stored tile's id."""
    check_tile_id(store, tile_id)
    meta = store.tile(tile_id)
    return Query(fingerprints(store, [tile_id])[0], f"tile {tile_id}", tile=meta)


def lonlat_query(store: Store, lon: float, lat: float) -> Query:
    """Query by the stored tile whose centre is nearest to (lon, lat) among those covering it."""
    near = [t for t in store.tiles_near(lon, lat) if t.lonlat is not None]
    if not near:
        raise QueryError(f"no indexed tile covers lon/lat {lon:.6f},{lat:.6f} in {store.path}; "
                         "check the order (longitude first) and 'tilesearch info' for coverage")
    coslat = math.cos(math.radians(lat))

    def gap(t: TileMeta) -> float:
        assert t.lonlat is not None
        return ((t.lonlat[0] - lon) * coslat) ** 2 + (t.lonlat[1] - lat) ** 2

    best = min(near, key=lambda t: (gap(t), t.tile_id))
    q = tile_query(store, best.tile_id)
    q.description = f"lonlat {lon:.6f},{lat:.6f} (tile {best.tile_id})"
    return q


def image_query(store: Store, image: str | Path | np.ndarray, model: Fingerprinter) -> Query:
    """Query by an image of any size, a file or RGB pixels (H, W, 3) uint8, resampled to the
    store's tile size (bilinear)."""
    store.check_model(model.identity)
    size = store.tile_size
    if isinstance(image, np.ndarray):
        pixels, name = _pixels_at(image, size), "pixels"
    else:
        from tilesearch.raster import open_image

        with open_image(image) as src:
            pixels = src.read_resized(size)
        name = Path(image).name
    vector = model.embed(pixels[None])[0]
    return Query(vector, f"image {name}", pixels=pixels)


def _pixels_at(image: np.ndarray, size: int) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise QueryError(f"query pixels must be RGB uint8 of shape (H, W, 3), got "
                         f"{image.dtype} {image.shape}")
    if image.shape[:2] == (size, size):
        return np.ascontiguousarray(image)
    from PIL import Image

    small = Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(small)
