"""Labelled retrieval: every image of a ``<class>/<image>`` folder queries all the others; a
result is relevant when its class equals the query's (mAP over all ranks, precision@k)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch.ann import combine
from tilesearch.errors import InputError, QueryError
from tilesearch.models import Fingerprinter
from tilesearch.options import ALPHA
from tilesearch.raster import IMAGE_SUFFIXES, open_image
from tilesearch.retrieval import DEFAULT_METRIC
from tilesearch.store import unit

PRECISION_AT = (1, 5, 10)


@dataclass
class RetrievalReport:
    """mAP and precision@k overall and per class."""

    metric: str
    images: int
    classes: int
    overall: dict[str, float]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "images": self.images, "classes": self.classes,
                "overall": self.overall, "per_class": self.per_class}


def labelled_images(folder: str | Path) -> tuple[list[Path], list[str]]:
    """Image paths and their labels (the name of the sub-folder holding each)."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(root, "not a folder of <class>/<image> files")
    paths, labels = [], []
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(sub.iterdir()):
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(f)
                labels.append(sub.name)
    if len(set(labels)) < 2:
        raise InputError(root, "needs at least two class sub-folders with images")
    return paths, labels


def read_resized(paths: Sequence[Path], size: int) -> np.ndarray:
    """Every image resampled to size x size RGB uint8, shape (N, size, size, 3)."""
    out = np.empty((len(paths), size, size, 3), np.uint8)
    for i, p in enumerate(paths):
        with open_image(p) as src:
            out[i] = src.read_resized(size)
    return out


def embed_all(model: Fingerprinter, tiles: np.ndarray, batch: int = 64,
              progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Fingerprints of `tiles` in batches."""
    parts = []
    for i in range(0, len(tiles), batch):
        parts.append(model.embed(tiles[i:i + batch]))
        if progress:
            progress(len(parts[-1]))
    return np.concatenate(parts) if parts else np.zeros((0, model.identity.dim), np.float32)


def pairwise_distances(vectors: np.ndarray, metric: str = DEFAULT_METRIC) -> np.ndarray:
    """All-pairs distances (squared euclidean or 1 - cosine), float64."""
    x = np.asarray(vectors, dtype=np.float64)
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return 1.0 - x @ x.T
    if metric != "euclidean":
        raise QueryError(f"unknown metric {metric!r}; choose euclidean or cosine")
    sq = (x * x).sum(1)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)


def expanded_distances(vectors: np.ndarray, metric: str = "cosine", expand: int = 0,
                       alpha: float = ALPHA) -> np.ndarray:
    """All-pairs distances after alpha query expansion of every query, as `knn.nearest` does
    for one query (the database side stays plain)."""
    if expand <= 0:
        return pairwise_distances(vectors, metric)
    x = np.asarray(vectors, dtype=np.float64)
    u = unit(x)
    sim = u @ u.T
    top = np.argsort(-sim, axis=1, kind="stable")[:, :expand]
    q = combine(u, u[top], np.take_along_axis(sim, top, 1), alpha)
    if metric == "cosine":
        return 1.0 - q @ u.T
    q *= np.linalg.norm(x, axis=1, keepdims=True)
    sq = (x * x).sum(1)
    return np.maximum((q * q).sum(1)[:, None] + sq[None, :] - 2.0 * q @ x.T, 0.0)


def retrieval_metrics(distances: np.ndarray, labels: Sequence[str],
                      metric: str = DEFAULT_METRIC) -> RetrievalReport:
    """mAP over all ranks and precision@1/5/10, each image querying all the others."""
    lab = np.asarray(labels)
    n = len(lab)
    d = np.array(distances, dtype=np.float64)
    np.fill_diagonal(d, np.inf)  # a query never retrieves itself
    order = np.argsort(d, axis=1, kind="stable")[:, : n - 1]
    rel = lab[order] == lab[:, None]
    hits = np.cumsum(rel, axis=1)
    ranks = np.arange(1, n)
    n_rel = rel.sum(1)
    ap = np.where(n_rel > 0, (rel * hits / ranks).sum(1) / np.maximum(n_rel, 1), 0.0)
    scores = {"mAP": ap}
    for k in PRECISION_AT:
        scores[f"P@{k}"] = hits[:, min(k, n - 1) - 1] / k
    per_class = {
        c: {name: round(float(v[lab == c].mean()), 4) for name, v in scores.items()}
        for c in sorted(set(labels))
    }
    overall = {name: round(float(v.mean()), 4) for name, v in scores.items()}
    return RetrievalReport(metric, n, len(per_class), overall, per_class)
