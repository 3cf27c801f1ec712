"""Database-side augmentation (DBA): search vectors learned from the store itself, no labels.

Each stored fingerprint is replaced, for searching, by the L2-normalised sum of itself and its
`k` nearest stored fingerprints from *other places* (tiles overlapping it are skipped: on a
sliding window they are the same place shifted), each weighted by its cosine similarity to the
tile to the power `alpha`, all L2-normalised first. A tile moves toward the centre of what
looks like it elsewhere, so "the same kind of place" outranks "the same colours", at some
cost to "this very object" (the figures: docs/quality.md).

The raw fingerprints stay. The augmented ones (unit length, float32) go to
``augmented-<count>-<ms>.f32`` named by the manifest's ``augment`` entry, and every search
compares against them; tiles appended later are compared by their raw fingerprint until
`build` runs again. A query that is not a stored tile (an image file) is moved into the same
space by alpha query expansion with the same `k` and `alpha` (`retrieval.expand_query`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tilesearch.ann.index import cached
from tilesearch.ann.spec import _faiss
from tilesearch.errors import StoreError
from tilesearch.options import ALPHA
from tilesearch.store import AUGMENT_KEY, Store, unit

K = 10
"""Neighbours averaged into each tile (the best of 5, 10 and 20 on UC Merced)."""
_CHUNK = 512


def combine(own: np.ndarray, neighbours: np.ndarray, sims: np.ndarray,
            alpha: float = ALPHA) -> np.ndarray:
    """Augmented vectors: ``unit(own + sum_j max(sim_j, 0) ** alpha * neighbour_j)``.

    `own` (n, d) and `neighbours` (n, k, d) are unit vectors, `sims` (n, k) their cosines."""
    w = np.clip(sims, 0.0, None) ** alpha
    return unit(own + np.einsum("nk,nkd->nd", w, neighbours))


def augment_set(vectors: np.ndarray, k: int = K, alpha: float = ALPHA) -> np.ndarray:
    """DBA of an in-memory set where every row is a different place (e.g. a labelled folder)."""
    u = unit(vectors)
    sim = u @ u.T
    np.fill_diagonal(sim, -np.inf)
    k = min(k, len(u) - 1)
    if k < 1:
        return u
    idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    return combine(u, u[idx], np.take_along_axis(sim, idx, 1), alpha)


@dataclass
class AugmentReport:
    """What `build` did."""

    tiles: int
    k: int
    alpha: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def build(store: Store, k: int = K, alpha: float = ALPHA,
          progress: Callable[[int], None] | None = None) -> AugmentReport:
    """Compute every tile's augmented vector and switch searches to them (atomically: the
    manifest names the new file only once it is complete). Needs the full fingerprints."""
    t0 = time.perf_counter()
    if not store.writable:
        raise StoreError(f"{store.path}: open the store writable to augment it")
    if store.full_from:
        raise StoreError(f"{store.path}: augmentation needs the full-precision fingerprints, "
                         "which were dropped (build-index --drop-full); re-index to augment")
    if k < 1:
        raise StoreError(f"augmentation needs k >= 1 neighbours, got {k}")
    n = store.count
    places = _Places(store)
    name = f"augmented-{n}-{int(time.time() * 1000)}.f32"
    tmp = store.path / (name + ".tmp")
    with open(tmp, "wb") as f:
        for lo in range(0, n, _CHUNK):
            hi = min(n, lo + _CHUNK)
            own = unit(store.full_vectors(lo, hi))
            ids, sims = _neighbours(store, places, own, lo, k)
            nbrs = unit(store.vectors()[np.maximum(ids, 0).ravel()]).reshape(*ids.shape, -1)
            f.write(combine(own, nbrs, np.where(ids >= 0, sims, 0.0), alpha).tobytes())
            if progress:
                progress(hi - lo)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, store.path / name)
    old = store.augmentation
    store.set_manifest(AUGMENT_KEY, {"file": name, "k": k, "alpha": alpha, "count": n,
                             "built": time.time()})
    store.forget_augmented()
    if old and old.get("file") and old["file"] != name:
        (store.path / old["file"]).unlink(missing_ok=True)
    return AugmentReport(n, k, alpha, time.perf_counter() - t0)


def remove(store: Store) -> bool:
    """Searches go back to the raw fingerprints; True when the store was augmented."""
    old = store.augmentation
    if old is None:
        return False
    if store.full_from:
        raise StoreError(f"{store.path}: its search index holds only augmented codes (full "
                         "fingerprints were dropped), so augmentation cannot be removed")
    store.set_manifest(AUGMENT_KEY, None)
    store.forget_augmented()
    if old.get("file"):
        (store.path / old["file"]).unlink(missing_ok=True)
    return True


def drop_file(store: Store) -> None:
    """Delete the augmented vectors once a search index holds them as codes (--drop-full)."""
    e = store.augmentation
    if e and e.get("file"):
        store.set_manifest(AUGMENT_KEY, {**e, "file": None})
        store.forget_augmented()
        (store.path / e["file"]).unlink(missing_ok=True)


class _Places:
    """Every tile's image and window as arrays, to tell tiles that overlap (the same place)."""

    def __init__(self, store: Store) -> None:
        self.image, self.col, self.row, self.w, self.h = store.windows().T
        self.spill = (2 * math.ceil(store.tile_size / store.stride) - 1) ** 2

    def overlap(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Elementwise: does tile a[i] overlap tile b[i] (same image, windows intersect)?"""
        return ((self.image[a] == self.image[b])
                & (self.col[a] < self.col[b] + self.w[b]) & (self.col[b] < self.col[a] + self.w[a])
                & (self.row[a] < self.row[b] + self.h[b]) & (self.row[b] < self.row[a] + self.h[a]))


def _neighbours(store: Store, places: _Places, q: np.ndarray, lo: int, k: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """The k most similar tiles to each of tiles ``lo .. lo + len(q) - 1`` (their unit
    fingerprints `q`) among those not overlapping it: ids (-1 where fewer exist) and cosines.
    Candidates come from the search index when the store has one (re-ranked exactly), else
    from an exact scan."""

    m = min(store.count, k + places.spill + 8)
    hi = lo + len(q)
    index = cached(store)
    if index is not None and index.count == store.count:
        _faiss().omp_set_num_threads(os.cpu_count() or 1)
        _, cand = index.search_batch(q, min(store.count, 2 * m))
        cand = np.where(cand >= 0, cand, np.arange(lo, hi)[:, None])  # pad with self
        sims = np.einsum("nd,nkd->nk", q, unit(store.vectors()[cand.ravel()])
                         .reshape(*cand.shape, -1))
    else:
        sims = np.empty((hi - lo, store.count), np.float32)
        norms = np.sqrt(np.maximum(store.sq_norms(), 1e-30))
        for c in range(0, store.count, 1 << 16):
            sims[:, c:c + (1 << 16)] = (q @ store.full_vectors(c, min(store.count, c + (1 << 16))).T
                                        / norms[c:c + (1 << 16)])
        cand = np.argpartition(-sims, m - 1, axis=1)[:, :m] if m < store.count else \
            np.broadcast_to(np.arange(store.count), sims.shape).copy()
        sims = np.take_along_axis(sims, cand, 1)
    own = np.arange(lo, hi)[:, None]
    sims = np.where(places.overlap(np.broadcast_to(own, cand.shape), cand), -np.inf, sims)
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    ids, sims = np.take_along_axis(cand, order, 1), np.take_along_axis(sims, order, 1)
    ids = np.where(np.isfinite(sims), ids, -1)
    if ids.shape[1] < k:  # a store smaller than k + 1
        pad = k - ids.shape[1]
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
        sims = np.pad(sims, ((0, 0), (0, pad)), constant_values=-np.inf)
    return ids, np.where(ids >= 0, sims, 0.0).astype(np.float32)
