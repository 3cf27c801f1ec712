"""Retrieval quality as numbers: labelled retrieval (mAP, precision@k on ``<class>/<image>``
folders) and a label-free check (transformed copies of indexed tiles should find their source)."""

from tilesearch.quality.labelled import (
    PRECISION_AT,
    RetrievalReport,
    embed_all,
    expanded_distances,
    labelled_images,
    pairwise_distances,
    read_resized,
    retrieval_metrics,
)
from tilesearch.quality.transforms import SHIFT, TRANSFORMS, TransformReport, robustness

__all__ = [
    "PRECISION_AT",
    "SHIFT",
    "TRANSFORMS",
    "RetrievalReport",
    "TransformReport",
    "embed_all",
    "expanded_distances",
    "labelled_images",
    "pairwise_distances",
    "read_resized",
    "retrieval_metrics",
    "robustness",
]
