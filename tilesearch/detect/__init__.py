"""Find all: from a label set to every occurrence in the store. A classifier of the labelled
tiles (`classifier`) scores every tile; tiles above a threshold are merged into places
(`places`), and the count is the number of places."""

from tilesearch.detect.classifier import (
    Classifier,
    Validation,
    fit,
    score_store,
    validate,
    wilson,
)
from tilesearch.detect.places import Detection, detections

__all__ = ["Classifier", "Detection", "Validation", "detections", "fit", "score_store",
           "validate", "wilson"]
