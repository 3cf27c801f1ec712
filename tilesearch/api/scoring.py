"""Scoring a store for a label set: the classifier fitted and every tile's probability, the
slow step that find-all, suggestions and audits share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tilesearch.detect import Fitted, fit, score_store
from tilesearch.errors import OptionError
from tilesearch.store import LabelSet, Store


@dataclass(frozen=True)
class Scores:
    """Every tile's calibrated probability of being like the label set (labelled tiles hold
    -1: they are known, never found nor suggested), and the fitted classifier. Scoring is
    the slow step; a threshold is then a comparison (the web app's slider keeps one)."""

    labels: LabelSet
    fitted: Fitted
    probabilities: np.ndarray
    seed: int = 0

    def above(self, threshold: float, allowed: np.ndarray | None = None) -> np.ndarray:
        """Ids of the tiles at or above `threshold` (and in `allowed`, a mask)."""
        hit = self.probabilities >= check_threshold(threshold)
        return np.flatnonzero(hit if allowed is None else hit & allowed)

    @property
    def heat(self) -> np.ndarray:
        """The probabilities with labelled tiles at their label (1 or 0): heatmap values."""
        out = self.probabilities.copy()
        out[list(self.labels.positives)] = 1.0
        out[list(self.labels.negatives)] = 0.0
        return out


def check_threshold(threshold: float) -> float:
    if not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise OptionError(f"threshold must be from 0 to 1, not {threshold!r}")
    return float(threshold)


def scores(store: str | Path | Store, name: str, *, seed: int = 0) -> Scores:
    """Fit the classifier of the label set `name` (`detect.fit`) and score every tile of
    `store` with it (`detect.score_store`)."""
    s = store if isinstance(store, Store) else Store.open(store)
    try:
        labels = s.label_set(name)
        fitted = fit(s, labels, seed=seed)
        p = score_store(s, fitted.classifier)
        p[[*labels.positives, *labels.negatives]] = -1.0
        return Scores(labels, fitted, p, seed)
    finally:
        if s is not store:
            s.close()
