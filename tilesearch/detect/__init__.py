"""Find all: from a label set to every occurrence in the store. A calibrated classifier of
the labelled tiles (`classifier`) scores every tile; tiles above a threshold are merged into
places (`places`), counted with the precision and recall the cross-fit measured
(`validation`, `found`) or by a person's review of random samples (`audit`); `suggest`
picks the tiles whose labels would help most."""

from tilesearch.detect.audit import (
    AUDIT_DRAW,
    AuditCount,
    AuditDraw,
    audit_version,
    audited_count,
    draw_audit,
    lattice,
)
from tilesearch.detect.classifier import (
    Classifier,
    Fitted,
    fit,
    fit_vectors,
    score_store,
    training_rows,
)
from tilesearch.detect.found import FindResult, RegionCount, detection_properties
from tilesearch.detect.places import Detection, detections, groups
from tilesearch.detect.suggest import pick_diverse, suggest, uncertainty
from tilesearch.detect.validation import Validation, expected_count, validation, wilson

__all__ = ["AUDIT_DRAW", "AuditCount", "AuditDraw", "Classifier", "Detection", "FindResult",
           "Fitted", "RegionCount", "Validation", "audit_version", "audited_count",
           "detection_properties", "detections", "draw_audit", "expected_count", "fit",
           "fit_vectors", "groups", "lattice", "pick_diverse", "score_store", "suggest",
           "training_rows", "uncertainty", "validation", "wilson"]
