"""The API's find-all: from a label set to every place like it, counted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch.detect import Detection, Validation, detections, fit, score_store, validate
from tilesearch.errors import OptionError
from tilesearch.store import Store


@dataclass(frozen=True)
class FindResult:
    """Every place of the store whose tiles score at or above `threshold` for a label set."""

    label_set: str
    threshold: float
    tiles: int
    detections: list[Detection]
    validation: Validation

    @property
    def count(self) -> int:
        return len(self.detections)

    @property
    def expected_count(self) -> tuple[float, float, float] | None:
        """The count corrected by the cross-validated precision and recall (count x precision
        / recall), with the interval their Wilson intervals give; None without them."""
        v = self.validation
        if not (v.precision and v.recall and v.precision_interval and v.recall_interval):
            return None
        lo = self.count * v.precision_interval[0] / max(v.recall_interval[1], 1e-9)
        hi = self.count * v.precision_interval[1] / max(v.recall_interval[0], 1e-9)
        return self.count * v.precision / v.recall, lo, hi

    def to_geojson(self) -> dict[str, Any]:
        """The detections as a GeoJSON FeatureCollection (lon/lat), best first."""
        from shapely.geometry import mapping

        feats = [{"type": "Feature", "geometry": mapping(d.geometry),
                  "properties": {"rank": i + 1, "max_score": round(d.max_score, 4),
                                 "mean_score": round(d.mean_score, 4),
                                 "tiles": list(d.tiles)}}
                 for i, d in enumerate(self.detections) if d.geometry is not None]
        v = self.validation
        return {"type": "FeatureCollection", "name": self.label_set,
                "label_set": self.label_set, "threshold": self.threshold,
                "count": self.count, "expected_count": self.expected_count,
                "precision": v.precision, "recall": v.recall, "features": feats}


def find(store: str | Path | Store, name: str, *, threshold: float = 0.5,
         seed: int = 0) -> FindResult:
    """Every place of `store` like the label set `name`: a classifier of its labels
    (`detect.fit`) scores every tile, those at or above `threshold` (a probability) are
    merged into places where they overlap. Labelled tiles are known and never returned. The
    result carries the classifier's cross-validated precision and recall on the labels at
    `threshold` (`detect.validate`) and the count they correct."""
    if not 0.0 <= threshold <= 1.0:
        raise OptionError(f"threshold must be from 0 to 1, not {threshold!r}")
    s = store if isinstance(store, Store) else Store.open(store)
    try:
        labels = s.label_set(name)
        scores = score_store(s, fit(s, labels, seed=seed))
        scores[[*labels.positives, *labels.negatives]] = -1.0  # known: never a find
        ids = np.flatnonzero(scores >= threshold)
        return FindResult(name, threshold, len(ids), detections(s, ids, scores),
                          validate(s, labels, threshold, seed=seed))
    finally:
        if s is not store:
            s.close()
