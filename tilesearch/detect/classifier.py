"""A classifier of a label set: L2-regularised logistic regression (scikit-learn) on the unit
fingerprints searches compare, positives against negatives plus unlabelled tiles drawn from
the store as weak background; its scores are probabilities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tilesearch.errors import QueryError
from tilesearch.store import LabelSet, Store, unit

BACKGROUND = 200
"""Unlabelled tiles drawn (seeded) as weak negatives: most places are not what is labelled."""
BACKGROUND_WEIGHT = 0.2
"""Weight of each background tile against a labelled one."""


@dataclass(frozen=True)
class Classifier:
    """A linear score: probability = sigmoid(unit(x) . weights + bias)."""

    weights: np.ndarray
    bias: float

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        z = unit(np.asarray(vectors, np.float32)) @ self.weights + self.bias
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -50, 50))), np.float32)


def fit(store: Store, labels: LabelSet, *, background: int = BACKGROUND,
        seed: int = 0) -> Classifier:
    """The classifier of `labels` on `store`; QueryError unless it has a positive."""
    from sklearn.linear_model import LogisticRegression

    if not labels.positives:
        raise QueryError(f"label set {labels.name!r} has no positive tile: mark at least one "
                         "with 'tilesearch label STORE NAME -p TILE'")
    labelled = np.array([*labels.positives, *labels.negatives], np.int64)
    rng = np.random.default_rng(seed)
    pool = np.setdiff1d(np.arange(store.full_from, store.count), labelled)
    extra = rng.choice(pool, min(background, len(pool)), replace=False) if len(pool) else pool
    ids = np.concatenate([labelled, np.sort(extra)]).astype(np.int64)
    y = np.r_[np.ones(len(labels.positives)), np.zeros(len(ids) - len(labels.positives))]
    w = np.r_[np.ones(len(labelled)), np.full(len(extra), BACKGROUND_WEIGHT)]
    x = unit(store.search_rows(ids))
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
    model.fit(x, y, sample_weight=w)
    return Classifier(model.coef_[0].astype(np.float32), float(model.intercept_[0]))


def score_store(store: Store, clf: Classifier) -> np.ndarray:
    """Every tile's probability (tiles whose full vectors were dropped get 0), by chunks of
    the memory map."""
    out = np.zeros(store.count, np.float32)
    for first, vecs, _ in store.search_segments(store.full_from, store.count):
        for lo in range(0, len(vecs), 65536):
            out[first + lo:first + lo + 65536] = clf.probabilities(vecs[lo:lo + 65536])
    return out
