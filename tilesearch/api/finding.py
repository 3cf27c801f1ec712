"""The API's find-all: from a label set to every place like it, counted; and the tiles to
label next."""

from __future__ import annotations

from pathlib import Path

from tilesearch.api.auditing import audit_for
from tilesearch.api.scoring import Scores, check_threshold, scores
from tilesearch.detect import FindResult, detections, suggest, validation
from tilesearch.errors import OptionError
from tilesearch.outputs import write_heatmaps
from tilesearch.retrieval import SearchFilter, allowed_mask
from tilesearch.store import Store


def find(store: str | Path | Store, name: str, *, threshold: float = 0.5, seed: int = 0,
         where: SearchFilter | None = None, scored: Scores | None = None) -> FindResult:
    """Every place of `store` like the label set `name`: tiles whose probability is at or
    above `threshold`, in the area and images of `where`, merged into places where they
    overlap (in one image or across overlapping images). The result carries the
    classifier's cross-validated precision and recall at `threshold` and the count they
    correct, and the audited count where the label set has an audit (`audit`). `scored`
    (from `scores`) spares refitting when only the threshold changed."""
    check_threshold(threshold)
    s = store if isinstance(store, Store) else Store.open(store)
    try:
        sc = scored if scored is not None else scores(s, name, seed=seed)
        ids = sc.above(threshold, allowed_mask(s, where) if where else None)
        audited, note = audit_for(s, sc.labels, threshold, sc.seed, where)
        return FindResult(name, threshold, len(ids), detections(s, ids, sc.probabilities),
                          validation(sc.fitted, threshold), audited, note)
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
