"""Distances from a query to the store's fingerprints: exact scans over the memory map, raw
against augmented vectors, and how the two mix."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tilesearch import ann
from tilesearch.errors import QueryError, StoreError
from tilesearch.retrieval.results import DEFAULT_METRIC, METRICS
from tilesearch.store import Store

_CHUNK = 1 << 16


RAW_WEIGHT = 0.3
"""Share of the raw distance in rankings on an augmented store, by default (`mix_raw`): turned
and mirrored copies find their source again (rank 1: 0.75 -> 1.00), at the cost of about
0.01 mAP on UC Merced (docs/quality.md). The weight the k-reciprocal re-ranking paper gives
the original distance (Zhong et al. 2017); not tuned on the evaluation labels."""


def distances(store: Store, vector: np.ndarray, metric: str = DEFAULT_METRIC,
              start: int = 0, stop: int | None = None) -> np.ndarray:
    """Exact distance from `vector` to the fingerprints of tiles ``start .. stop - 1`` (default
    all) as squared L2 or 1 - cosine; those tiles must keep full-precision vectors. On an
    augmented store the tiles' augmented vectors are compared (`tilesearch.ann.augment`)."""
    q = _check_query(store, vector, metric)
    stop = store.count if stop is None else stop
    out = np.empty(stop - start, dtype=np.float32)
    for first, vecs, norms in store.search_segments(start, stop):
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
    if metric != "cosine" and store.augmentation:
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
        return np.asarray(store.search_rows(ids), np.float32)
    out = np.empty((len(ids), store.dim), np.float32)
    if full.any():
        out[full] = store.search_rows(ids[full])
    index = ann.cached(store)
    if index is None:
        raise StoreError(f"{store.path}: tiles below {store.full_from} have no fingerprints")
    dec = index.decode(ids[~full])
    out[~full] = dec * np.sqrt(store.sq_norms()[ids[~full]])[:, None]
    return out


def default_raw_weight(store: Store) -> float:
    """`RAW_WEIGHT` on an augmented store that keeps every raw fingerprint, else 0."""
    return RAW_WEIGHT if store.augmentation is not None and store.full_from == 0 else 0.0


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


def _top(d: np.ndarray, m: int) -> np.ndarray:
    """Indices of the m smallest values of `d`, in any order."""
    return np.argpartition(d, m - 1)[:m] if m < len(d) else np.arange(len(d))
