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


@dataclass(frozen=True)
class Validation:
    """How the classifier does on its own labels at a threshold, by cross-validation (each
    labelled tile scored by a classifier fitted without it): precision and recall, each with
    a 90 % Wilson interval."""

    folds: int
    precision: float | None
    recall: float | None
    precision_interval: tuple[float, float] | None
    recall_interval: tuple[float, float] | None


def validate(store: Store, labels: LabelSet, threshold: float, *, folds: int = 5,
             seed: int = 0) -> Validation:
    """Cross-validated precision and recall of `labels`' classifier at `threshold` (None
    with fewer than two positives or two negatives: nothing to hold out)."""
    pos, neg = np.array(labels.positives), np.array(labels.negatives)
    k = min(folds, len(pos), len(neg))
    if k < 2:
        return Validation(0, None, None, None, None)
    rng = np.random.default_rng(seed)
    parts = [np.array_split(rng.permutation(a), k) for a in (pos, neg)]
    predicted, truth = [], []
    for f in range(k):
        held_pos, held_neg = parts[0][f], parts[1][f]
        train = LabelSet(labels.name, tuple(np.setdiff1d(pos, held_pos).tolist()),
                         tuple(np.setdiff1d(neg, held_neg).tolist()))
        clf = fit(store, train, seed=seed)
        held = np.concatenate([held_pos, held_neg]).astype(np.int64)
        predicted.append(clf.probabilities(store.search_rows(held)) >= threshold)
        truth.append(np.r_[np.ones(len(held_pos), bool), np.zeros(len(held_neg), bool)])
    p, t = np.concatenate(predicted), np.concatenate(truth)
    tp, fp, fn = int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum())
    return Validation(k, tp / (tp + fp) if tp + fp else None, tp / (tp + fn),
                      wilson(tp, tp + fp) if tp + fp else None, wilson(tp, tp + fn))


def wilson(successes: int, trials: int, z: float = 1.645) -> tuple[float, float]:
    """The Wilson score interval of a proportion (z 1.645: 90 %)."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (
        1 + z * z / trials)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))
