"""Ranking: the k nearest tiles by the search index or exactly, with query expansion, filters
and distinct places."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tilesearch import ann
from tilesearch.errors import QueryError
from tilesearch.options import ALPHA, K
from tilesearch.records import TileMeta
from tilesearch.retrieval.dedupe import _filter
from tilesearch.retrieval.distances import (
    _check_query,
    _from_dots,
    _top,
    check_raw_weight,
    distances,
    fingerprints,
    mix_raw,
)
from tilesearch.retrieval.results import DEFAULT_METRIC, Hit
from tilesearch.store import Store, unit


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
    wanted = max(int(m * ann.spec.RERANK_FACTOR), ann.spec.RERANK_MIN) if rerank else m
    ids, d = index.search(q, wanted, allowed, needed=m)
    if rerank and len(ids):
        x = fingerprints(store, ids)
        d = _from_dots(x @ q, np.einsum("nd,nd->n", x, x), q, "cosine")
    return ids, d


def expand_query(store: Store, vector: np.ndarray, k: int, alpha: float = ALPHA) -> np.ndarray:
    """Alpha query expansion: the mean of the query and its `k` nearest stored fingerprints
    (cosine), each weighted by its cosine similarity to the query to the power `alpha`.

    Computed on L2-normalised vectors; the result is L2-normalised.
    """
    q = np.asarray(vector, dtype=np.float32).reshape(-1)
    top, d = ranked(store, q, k, "cosine")
    if len(top) < 1:
        return q
    x = unit(fingerprints(store, top))
    return ann.augment.combine(unit(q[None]), x[None], (1.0 - d)[None], alpha)[0]


def _first_fetch(store: Store, k: int, exact: bool) -> int:
    """How many ranked tiles `nearest` asks for first: enough that overlap suppression rarely
    needs a second round (16 k, and 4 k + 1,024 for a large k), or 4 k where every candidate
    may cost a read from disk (a refining index's finer codes); more are fetched when too few
    hits remain."""
    index = None if exact else ann.cached(store)
    if index is not None and index.refiner is not None:
        return max(4 * k, ann.spec.REFINE_MIN)
    return max(min(16 * k, 4 * k + 1024), 64)


def nearest(store: Store, vector: np.ndarray, k: int = K, metric: str = DEFAULT_METRIC,
            exclude: TileMeta | Sequence[TileMeta] | None = None,
            suppress_overlaps: bool = True, expand: int = 0, alpha: float = ALPHA,
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
    mixing = raw_weight > 0 and (expand > 0 or store.augmentation is not None)
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


def index_recall(store: Store, queries: np.ndarray, k: int = K) -> float:
    """Mean recall@k of the store's search index against exact search, tie-aware: a returned
    tile counts when its exact distance is within 1e-6 of the exact k-th nearest's, so ties
    at the k-th place do not count as misses."""
    found = 0
    for q in np.atleast_2d(queries):
        d = distances(store, q)
        kth = np.partition(d, k - 1)[k - 1]
        found += int((d[ranked(store, q, k)[0]] <= kth + 1e-6).sum())
    return found / (k * len(np.atleast_2d(queries)))
