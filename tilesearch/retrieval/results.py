"""What a search answers: the query, its ranked hits, and the metric."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tilesearch.options import METRIC, METRICS
from tilesearch.records import TileMeta

DEFAULT_METRIC = METRIC
"""`options.METRIC`, under the name searches have always used."""
__all__ = ["DEFAULT_METRIC", "METRICS", "Hit", "Query", "SearchResult"]


@dataclass
class Query:
    """A query fingerprint and where it came from."""

    vector: np.ndarray = field(repr=False)
    description: str
    tile: TileMeta | None = None
    pixels: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Hit:
    """One result: its rank (1-based), distance to the query, and the tile."""

    rank: int
    distance: float
    tile: TileMeta

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "distance": self.distance, **self.tile.to_dict()}


@dataclass
class SearchResult:
    """The ranked hits of one query."""

    query: Query
    hits: list[Hit]
    metric: str
    store: str

    def to_dict(self) -> dict[str, Any]:
        q = self.query
        return {
            "store": self.store, "metric": self.metric, "query": q.description,
            "query_tile": q.tile.to_dict() if q.tile else None,
            "results": [h.to_dict() for h in self.hits],
        }
