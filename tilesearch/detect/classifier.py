"""A classifier of a label set: L2-regularised logistic regression (scikit-learn) on the unit
fingerprints searches compare, positives against negatives plus unlabelled tiles drawn from
the store as weak background, calibrated (Platt) on decisions cross-fitted over the same
rows, so its scores are probabilities. The choice of model, its regularisation and the
calibration were made by measurement: docs/benchmarks/find.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tilesearch import ann
from tilesearch.errors import QueryError, StoreError
from tilesearch.retrieval import fingerprints
from tilesearch.store import LabelSet, Store, unit

C = 10.0
"""Inverse L2 strength of the logistic regression (docs/benchmarks/find.md compares)."""
BACKGROUND = 200
"""Unlabelled tiles drawn (seeded) as weak negatives: most places are not what is labelled."""
BACKGROUND_WEIGHT = 0.2
"""Weight of each background tile against a labelled one."""
FOLDS = 5
"""Folds of the cross-fit that calibrates the scores and validates them on the labels."""
CHUNK = 65536
"""Rows scored at a time when a whole store is scored."""


@dataclass(frozen=True)
class Classifier:
    """A calibrated linear score: probability = sigmoid(unit(x) . weights + bias)."""

    weights: np.ndarray
    bias: float

    def logits(self, vectors: np.ndarray, sq_norms: np.ndarray | None = None) -> np.ndarray:
        """The log-odds of `vectors` (their squared norms, when known, spare a pass)."""
        x = np.asarray(vectors, np.float32)
        if sq_norms is None:
            return np.asarray(unit(x) @ self.weights + self.bias, np.float32)
        n = np.sqrt(np.maximum(np.asarray(sq_norms, np.float32), 1e-24))
        return np.asarray(x @ self.weights / n + self.bias, np.float32)

    def from_dots(self, dots: np.ndarray, sq_norms: np.ndarray) -> np.ndarray:
        """Probabilities from the vectors' products with `weights` and their squared norms."""
        n = np.sqrt(np.maximum(np.asarray(sq_norms, np.float32), 1e-24))
        return sigmoid(np.asarray(dots, np.float32) / n + self.bias)

    def probabilities(self, vectors: np.ndarray,
                      sq_norms: np.ndarray | None = None) -> np.ndarray:
        return sigmoid(self.logits(vectors, sq_norms))


@dataclass(frozen=True)
class Fitted:
    """A classifier and what its cross-fit learnt of it: the held-out probability of every
    labelled tile (`tiles`, `truth`), from a classifier fitted without it; `folds` 0 when
    there were too few labels to hold any out (then the scores are not calibrated)."""

    classifier: Classifier
    tiles: np.ndarray
    truth: np.ndarray
    held_out: np.ndarray
    folds: int


def sigmoid(z: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -50, 50))), np.float32)


def fit_vectors(x: np.ndarray, y: np.ndarray, weight: np.ndarray, *, folds: int = FOLDS,
                c: float = C, seed: int = 0) -> tuple[Classifier, np.ndarray | None, int]:
    """The calibrated classifier of rows `x` (labels `y`, sample weights `weight`), the
    held-out probability of every row (None without a cross-fit) and the folds used.
    The cross-fit splits positives and negatives separately into up to `folds` parts."""
    basis, x = _row_space(unit(np.asarray(x, np.float32)))
    y = np.asarray(y, np.float64)
    weight = np.asarray(weight, np.float64)
    k = min(folds, int((y == 1).sum()), int((y == 0).sum()))
    model = _logistic(x, y, weight, c)
    raw = Classifier((basis @ model.coef_[0]).astype(np.float32), float(model.intercept_[0]))
    if k < 2:
        return raw, None, 0
    part = _folds(y, k, seed)
    z = np.zeros(len(y), np.float64)
    for f in range(k):
        inside = part != f
        m = _logistic(x[inside], y[inside], weight[inside], c)
        z[~inside] = m.decision_function(x[~inside])
    a, b = _platt(z, y, weight)
    calibrated = Classifier((raw.weights * a).astype(np.float32), raw.bias * a + b)
    return calibrated, sigmoid(a * z + b), k


def _row_space(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An orthonormal basis Q (dim x r) of the rows' span and the rows in it (x @ Q).

    The L2-regularised optimum lies in the span of the training rows, and the penalty is the
    same in any orthonormal basis, so fitting on x @ Q (r <= rows columns) and mapping the
    weights back by Q gives the same classifier as fitting on x, for every subset of the
    rows too (the cross-fit), with fewer columns when labels are fewer than dimensions."""
    if len(x) >= x.shape[1]:
        return np.eye(x.shape[1], dtype=np.float32), x
    q, r = np.linalg.qr(x.T.astype(np.float64))
    return q.astype(np.float32), np.ascontiguousarray(r.T, np.float32)


def _logistic(x: np.ndarray, y: np.ndarray, weight: np.ndarray, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight="balanced", max_iter=1000).fit(
        x, y, sample_weight=weight)


def _folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A fold number per row, positives and negatives spread evenly over the `k` folds."""
    rng = np.random.default_rng(seed)
    part = np.zeros(len(y), np.int64)
    for cls in (0, 1):
        rows = np.flatnonzero(y == cls)
        part[rng.permutation(rows)] = np.arange(len(rows)) % k
    return part


def _platt(z: np.ndarray, y: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """Slope and offset mapping held-out decisions to probabilities (Platt scaling)."""
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=1e4, max_iter=1000).fit(z[:, None], y, sample_weight=weight)
    return max(float(m.coef_[0, 0]), 1e-3), float(m.intercept_[0])


def training_rows(store: Store, labels: LabelSet, *, background: int = BACKGROUND,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tile ids, labels and weights the classifier of `labels` is fitted on: the labelled
    tiles, then up to `background` other tiles drawn (seeded) as weak negatives."""
    if not labels.positives:
        raise QueryError(f"label set {labels.name!r} has no positive tile: mark at least one "
                         "with 'tilesearch label STORE NAME -p TILE'")
    labelled = np.array([*labels.positives, *labels.negatives], np.int64)
    rng = np.random.default_rng(seed)
    pool = np.setdiff1d(np.arange(store.count), labelled)
    extra = np.sort(rng.choice(pool, min(background, len(pool)), replace=False))
    if not labels.negatives and not len(extra):
        raise QueryError(f"label set {labels.name!r} has positives only and the store has no "
                         "other tile to stand for the background: mark negatives with -n")
    ids = np.concatenate([labelled, extra]).astype(np.int64)
    y = np.r_[np.ones(len(labels.positives)), np.zeros(len(ids) - len(labels.positives))]
    w = np.r_[np.ones(len(labelled)), np.full(len(extra), BACKGROUND_WEIGHT)]
    return ids, y, w


def fit(store: Store, labels: LabelSet, *, background: int = BACKGROUND,
        seed: int = 0) -> Fitted:
    """The calibrated classifier of `labels` on `store`; QueryError unless it has a
    positive (and something to stand against it)."""
    ids, y, w = training_rows(store, labels, background=background, seed=seed)
    clf, held, k = fit_vectors(fingerprints(store, ids), y, w, seed=seed)
    n = len(labels.positives) + len(labels.negatives)
    held_out = held[:n] if held is not None else np.zeros(0, np.float32)
    return Fitted(clf, ids[:n], y[:n].astype(bool), held_out, k)


def score_store(store: Store, clf: Classifier) -> np.ndarray:
    """Every tile's probability, a chunked scan: one matrix-vector product per chunk of the
    memory-mapped vectors, divided by the stored norms; tiles whose full vectors were dropped
    (``build-index --drop-full``) are scored from the search index's codes (`score_codes`;
    docs/benchmarks/find.md: the same mAP on UC Merced)."""
    out = np.zeros(store.count, np.float32)
    if store.full_from:
        index = ann.cached(store)
        if index is None:
            raise StoreError(f"{store.path}: tiles below {store.full_from} have neither full "
                             "fingerprints nor a search index; rebuild it with 'tilesearch "
                             f"build-index {store.path} --rebuild'")
        score_codes(index, clf, store.full_from, out)
    for first, vecs, sq in store.search_segments(store.full_from, store.count):
        for lo in range(0, len(vecs), CHUNK):
            out[first + lo:first + lo + CHUNK] = clf.probabilities(
                vecs[lo:lo + CHUNK], sq[lo:lo + CHUNK])
    return out


def score_codes(index: ann.AnnIndex, clf: Classifier, stop: int,
                out: np.ndarray | None = None) -> np.ndarray:
    """The probabilities of the coded tiles ``0 .. stop - 1`` from `index`'s codes, a chunk at
    a time (`AnnIndex.dots`), written into `out[:stop]` when given."""
    if out is None:
        out = np.zeros(stop, np.float32)
    for lo in range(0, stop, CHUNK):
        dots, sq = index.dots(clf.weights, lo, min(lo + CHUNK, stop))
        out[lo:lo + len(dots)] = clf.from_dots(dots, sq)
    return out
