"""The API's find-all: from a label set to every place like it, counted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch.detect import Detection, detections, fit, score_store
from tilesearch.errors import OptionError
from tilesearch.store import Store


@dataclass(frozen=True)
class FindResult:
    """Every place of the store whose tiles score at or above `threshold` for a label set."""

    label_set: str
    threshold: float
    tiles: int
    detections: list[Detection]

    @property
    def count(self) -> int:
        return len(self.detections)

    def to_geojson(self) -> dict[str, Any]:
        """The detections as a GeoJSON FeatureCollection (lon/lat), best first."""
        from shapely.geometry import mapping

        feats = [{"type": "Feature", "geometry": mapping(d.geometry),
                  "properties": {"rank": i + 1, "max_score": round(d.max_score, 4),
                                 "mean_score": round(d.mean_score, 4),
                                 "tiles": list(d.tiles)}}
                 for i, d in enumerate(self.detections) if d.geometry is not None]
        return {"type": "FeatureCollection", "name": self.label_set,
                "label_set": self.label_set, "threshold": self.threshold,
                "count": self.count, "features": feats}


def find(store: str | Path | Store, name: str, *, threshold: float = 0.5,
         seed: int = 0) -> FindResult:
    """Every place of `store` like the label set `name`: a classifier of its labels
    (`detect.fit`) scores every tile, those at or above `threshold` (a probability) are
    merged into places where they overlap. Labelled tiles are known and never returned."""
    if not 0.0 <= threshold <= 1.0:
        raise OptionError(f"threshold must be from 0 to 1, not {threshold!r}")
    s = store if isinstance(store, Store) else Store.open(store)
    try:
        labels = s.label_set(name)
        scores = score_store(s, fit(s, labels, seed=seed))
        scores[[*labels.positives, *labels.negatives]] = -1.0  # known: never a find
        ids = np.flatnonzero(scores >= threshold)
        return FindResult(name, threshold, len(ids), detections(s, ids, scores))
    finally:
        if s is not store:
            s.close()
