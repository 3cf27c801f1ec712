"""What a find-all returns: the places above a threshold, their count and how sure it is, and
the same per region (`--count-by`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tilesearch.detect.audit import AuditCount
from tilesearch.detect.places import Detection
from tilesearch.detect.validation import Validation, expected_count


@dataclass(frozen=True)
class RegionCount:
    """The places of one region (those whose centre lies inside) and their corrected count."""

    name: str
    count: int
    expected: tuple[float, float, float] | None

    def to_dict(self) -> dict[str, Any]:
        e = self.expected
        return {"region": self.name, "count": self.count,
                "expected": round(e[0], 2) if e else None,
                "expected_low": round(e[1], 2) if e else None,
                "expected_high": round(e[2], 2) if e else None}


@dataclass(frozen=True)
class FindResult:
    """Every place of the store whose tiles score at or above `threshold` for a label set,
    with the classifier's cross-validated precision and recall there, and the audited count
    when the label set has an audit for this threshold (`audit_note` says why not, or what
    is left to answer)."""

    label_set: str
    threshold: float
    tiles: int
    detections: list[Detection]
    validation: Validation
    audit: AuditCount | None = None
    audit_note: str | None = None

    @property
    def count(self) -> int:
        return len(self.detections)

    @property
    def expected_count(self) -> tuple[float, float, float] | None:
        """The count corrected by precision and recall, and its 90 % interval."""
        return expected_count(self.count, self.validation)

    def count_by(self, regions: list[tuple[str, Any]]) -> list[RegionCount]:
        """The count in each (name, lon/lat polygon) region: places whose centre lies
        inside, corrected by the same precision and recall."""
        import shapely

        centres = [d.geometry.centroid if d.geometry is not None else None
                   for d in self.detections]
        pts = shapely.points([(c.x, c.y) for c in centres if c is not None])
        out = []
        for name, geom in regions:
            n = int(shapely.contains_xy(geom, shapely.get_x(pts), shapely.get_y(pts)).sum()
                    ) if len(pts) else 0
            out.append(RegionCount(name, n, expected_count(n, self.validation)))
        return out

    def summary(self) -> dict[str, Any]:
        """The count, the corrected count and the validation, as JSON-ready values."""
        v = self.validation
        return {"label_set": self.label_set, "threshold": self.threshold,
                "tiles": self.tiles, "count": self.count,
                "expected_count": self.expected_count, "folds": v.folds,
                "precision": v.precision, "recall": v.recall,
                "precision_interval": v.precision_interval,
                "recall_interval": v.recall_interval,
                "audited_count": self.audit.to_dict() if self.audit else None,
                "audit_note": self.audit_note}

    def to_geojson(self) -> dict[str, Any]:
        """The detections as a GeoJSON FeatureCollection (lon/lat), best first, with the
        summary as foreign members."""
        from shapely.geometry import mapping

        feats = [{"type": "Feature", "geometry": mapping(d.geometry),
                  "properties": detection_properties(i, d)}
                 for i, d in enumerate(self.detections) if d.geometry is not None]
        return {"type": "FeatureCollection", "name": self.label_set, **self.summary(),
                "features": feats}


def detection_properties(i: int, d: Detection) -> dict[str, Any]:
    """The attributes of detection number `i` (0 first) in the GIS exports."""
    c = d.centre
    return {"rank": i + 1, "max_score": round(d.max_score, 4),
            "mean_score": round(d.mean_score, 4), "n_tiles": len(d.tiles),
            "area_m2": round(d.area_m2, 2) if d.area_m2 is not None else None,
            "lon": round(c[0], 7) if c else None, "lat": round(c[1], 7) if c else None,
            "tiles": list(d.tiles)}
