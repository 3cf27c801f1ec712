"""The API's find-all: from a label set to every place like it, counted; and the tiles to
label next."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tilesearch.detect import (
    FindResult,
    Fitted,
    detections,
    fit,
    score_store,
    suggest,
    validation,
)
from tilesearch.errors import OptionError
from tilesearch.outputs import write_heatmaps
from tilesearch.retrieval import SearchFilter, allowed_mask
from tilesearch.store import LabelSet, Store


@dataclass(frozen=True)
class Scores:
    """Every tile's calibrated probability of being like the label set (labelled tiles hold
    -1: they are known, never found nor suggested), and the fitted classifier. Scoring is
    the slow step; a threshold is then a comparison (the web app's slider keeps one)."""

    labels: LabelSet
    fitted: Fitted
    probabilities: np.ndarray

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
        return Scores(labels, fitted, p)
    finally:
        if s is not store:
            s.close()


def find(store: str | Path | Store, name: str, *, threshold: float = 0.5, seed: int = 0,
         where: SearchFilter | None = None, scored: Scores | None = None) -> FindResult:
    """Every place of `store` like the label set `name`: tiles whose probability is at or
    above `threshold`, in the area and images of `where`, merged into places where they
    overlap (in one image or across overlapping images). The result carries the
    classifier's cross-validated precision and recall at `threshold` and the count they
    correct. `scored` (from `scores`) spares refitting when only the threshold changed."""
    check_threshold(threshold)
    s = store if isinstance(store, Store) else Store.open(store)
    try:
        sc = scored if scored is not None else scores(s, name, seed=seed)
        ids = sc.above(threshold, allowed_mask(s, where) if where else None)
        return FindResult(name, threshold, len(ids), detections(s, ids, sc.probabilities),
                          validation(sc.fitted, threshold))
    finally:
        if s is not store:
            s.close()


def suggestions(store: str | Path | Store, name: str, n: int = 10, *, seed: int = 0,
                scored: Scores | None = None) -> list[int]:
    """Ids of up to `n` unlabelled tiles whose labels would help the classifier of `name`
    most: uncertain ones, spread out (`detect.suggest`). Label them and score again."""
    if not isinstance(n, int) or n < 1:
        raise OptionError(f"the number of suggestions must be a whole number from 1, not {n!r}")
    s = store if isinstance(store, Store) else Store.open(store)
    try:
        sc = scored if scored is not None else scores(s, name, seed=seed)
        return suggest(s, sc.probabilities, n)
    finally:
        if s is not store:
            s.close()


def heatmaps(store: str | Path | Store, scored: Scores, folder: str | Path) -> list[Path]:
    """A score heatmap per georeferenced image of `store` in `folder`, as Cloud-Optimised
    GeoTIFFs (`outputs.write_heatmaps`); labelled tiles show their label."""
    s = store if isinstance(store, Store) else Store.open(store)
    try:
        return write_heatmaps(s, scored.heat, folder)
    finally:
        if s is not store:
            s.close()
