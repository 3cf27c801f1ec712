"""Active learning: the unlabelled tiles whose labels would help most. A tile the classifier
is unsure of (probability near 0.5) moves the boundary when labelled; several near copies of
one tile teach no more than one, so the picks are spread out: greedily, the most uncertain
candidate, discounted by its likeness to those already picked (maximal marginal relevance),
never one overlapping a pick. docs/benchmarks/find.md measures it against random picks."""

from __future__ import annotations

import numpy as np

from tilesearch.store import Store, unit

POOL = 20
"""Candidates per suggestion: the most uncertain `POOL * n` tiles are considered."""
LIKENESS = 0.5
"""How much likeness to a pick (cosine) discounts a candidate's uncertainty."""


def uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """1 at probability 0.5, 0 at 0 and 1."""
    return np.asarray(1.0 - np.abs(2.0 * np.asarray(probabilities, np.float32) - 1.0))


def pick_diverse(vectors: np.ndarray, probabilities: np.ndarray, n: int, *,
                 likeness: float = LIKENESS, clash: np.ndarray | None = None) -> list[int]:
    """Up to `n` row numbers of `vectors`, most uncertain first, each discounted by its
    greatest cosine to the rows picked before; `clash[i, j]` True forbids picking both."""
    x = unit(np.asarray(vectors, np.float32))
    gain = uncertainty(probabilities).astype(np.float64)
    nearest = np.zeros(len(x))
    allowed = np.ones(len(x), bool)
    picked: list[int] = []
    while len(picked) < n and allowed.any():
        value = np.where(allowed, gain - likeness * nearest, -np.inf)
        i = int(np.argmax(value))
        picked.append(i)
        allowed[i] = False
        if clash is not None:
            allowed &= ~clash[i]
        nearest = np.maximum(nearest, x @ x[i])
    return picked


def suggest(store: Store, scores: np.ndarray, n: int) -> list[int]:
    """Tile ids of up to `n` tiles to label next, given every tile's probability `scores`
    (labelled tiles marked below 0 are never suggested)."""
    if n <= 0:
        return []
    open_ = np.flatnonzero(scores >= 0)
    open_ = open_[open_ >= store.full_from]
    if not len(open_):
        return []
    take = min(len(open_), POOL * n)
    order = np.argsort(-uncertainty(scores[open_]), kind="stable")[:take]
    ids = np.sort(open_[order])
    picks = pick_diverse(store.search_rows(ids), scores[ids], n, clash=_overlaps(store, ids))
    return [int(ids[i]) for i in picks]


def _overlaps(store: Store, ids: np.ndarray) -> np.ndarray:
    """Pairs of tiles among `ids` of one image whose windows share pixels."""
    w = store.windows()[ids]
    img, col, row, wid, hgt = (w[:, i][:, None] for i in range(5))
    same = img == img.T
    cols = (col < col.T + wid.T) & (col + wid > col.T)
    rows = (row < row.T + hgt.T) & (row + hgt > row.T)
    return np.asarray(same & cols & rows)
