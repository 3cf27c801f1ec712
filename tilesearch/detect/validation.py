"""How sure a count is: precision and recall of the classifier on its own labels at a
threshold, from the held-out probabilities of the cross-fit (each labelled tile scored by a
classifier fitted without it), each with a 90 % Wilson interval; and the count they correct."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tilesearch.detect.classifier import Fitted

Z90 = 1.645
"""The normal quantile of a two-sided 90 % interval."""


@dataclass(frozen=True)
class Validation:
    """Cross-validated precision and recall at a threshold (None where there is nothing to
    estimate them from: fewer than two labels of a class, or no held-out tile above the
    threshold for precision)."""

    folds: int
    precision: float | None
    recall: float | None
    precision_interval: tuple[float, float] | None
    recall_interval: tuple[float, float] | None


def validation(fitted: Fitted, threshold: float) -> Validation:
    """The figures of `fitted`'s held-out probabilities at `threshold`."""
    if not fitted.folds:
        return Validation(0, None, None, None, None)
    p, t = fitted.held_out >= threshold, fitted.truth
    tp, fp, fn = int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum())
    return Validation(fitted.folds, tp / (tp + fp) if tp + fp else None, tp / (tp + fn),
                      wilson(tp, tp + fp) if tp + fp else None, wilson(tp, tp + fn))


def expected_count(count: int, v: Validation) -> tuple[float, float, float] | None:
    """`count` corrected by precision and recall (count x precision / recall) and its
    interval from their Wilson intervals (the low end from the lowest precision and the
    highest recall); None without them or with a recall of 0."""
    if not (v.precision is not None and v.recall and v.precision_interval
            and v.recall_interval):
        return None
    lo = count * v.precision_interval[0] / max(v.recall_interval[1], 1e-9)
    hi = count * v.precision_interval[1] / max(v.recall_interval[0], 1e-9)
    return count * v.precision / v.recall, lo, hi


def wilson(successes: int, trials: int, z: float = Z90) -> tuple[float, float]:
    """The Wilson score interval of a proportion (z 1.645: 90 %)."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (
        1 + z * z / trials)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))
