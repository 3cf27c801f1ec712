"""Find all: from a label set to every occurrence in the store. A calibrated classifier of
the labelled tiles (`classifier`) scores every tile; tiles above a threshold are merged into
places (`places`), counted with the precision and recall the cross-fit measured
(`validation`, `found`); `suggest` picks the tiles whose labels would help most."""

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

__all__ = ["Classifier", "Detection", "FindResult", "Fitted", "RegionCount", "Validation",
           "detection_properties", "detections", "expected_count", "fit", "fit_vectors",
           "groups", "pick_diverse", "score_store", "suggest", "training_rows", "uncertainty",
           "validation", "wilson"]
