"""Retrieval quality as numbers: labelled retrieval (mAP, precision@k) and a label-free check.

Labelled: every image of a ``<class>/<image>`` folder queries all the others; a result is
relevant when its class equals the query's. Label-free: transformed copies of indexed tiles
(rotated, flipped, brightness/contrast shifted, JPEG re-compressed, shifted) query the store and
should find their source tile.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tilesearch.augment import combine, unit
from tilesearch.errors import InputError, QueryError
from tilesearch.knn import DEFAULT_METRIC
from tilesearch.models.base import Fingerprinter
from tilesearch.raster import IMAGE_SUFFIXES, open_image

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
                       alpha: float = 3.0) -> np.ndarray:
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


# ----- label-free: transformed copies of indexed tiles ---------------------------------------
def _jpeg(tile: np.ndarray, quality: int = 50) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(tile).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _tone(tile: np.ndarray, gain: float, offset: float) -> np.ndarray:
    return np.clip(tile.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)


TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "rot90": lambda t: np.rot90(t, 1),
    "rot180": lambda t: np.rot90(t, 2),
    "rot270": lambda t: np.rot90(t, 3),
    "flip_lr": lambda t: t[:, ::-1],
    "flip_ud": lambda t: t[::-1],
    "brighter": lambda t: _tone(t, 1.0, 30),
    "darker": lambda t: _tone(t, 1.0, -30),
    "contrast_up": lambda t: _tone(t, 1.25, -0.125 * 255 * 0.5),
    "contrast_down": lambda t: _tone(t, 0.8, 0.1 * 255 * 0.5),
    "jpeg_q50": _jpeg,
}
"""Pixel transforms of a tile; 'shift32' (the window moved by 32 px) is read from the image."""
SHIFT = 32


@dataclass
class TransformReport:
    """Per transform: how often the source tile comes back at rank 1 and within the top 10."""

    samples: int
    rank1: dict[str, float]
    top10: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "rank1": self.rank1, "top10": self.top10}


def transform_check(store: Any, model: Fingerprinter, *, samples: int = 100, seed: int = 0,
                    metric: str = DEFAULT_METRIC, raw_weight: float = 0.0,
                    progress: Callable[[int], None] | None = None) -> TransformReport:
    """Query `store` with transformed copies of `samples` random indexed tiles (seeded).

    On an augmented store the copies are expanded into its space, as image searches are, and
    `raw_weight` > 0 mixes in their raw distance to every tile (`knn.mix_raw`)."""
    from tilesearch.augment import entry
    from tilesearch.knn import (
        blend,
        check_raw_weight,
        distances,
        expand_query,
        raw_distances,
    )
    from tilesearch.tiling import Window

    store.check_model(model.identity)
    check_raw_weight(raw_weight, metric)
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(store.count, size=min(samples, store.count), replace=False))
    names = [*TRANSFORMS, "shift32"]
    queries: list[np.ndarray] = []
    for meta in store.tiles(ids.tolist()):
        info = store.image_by_id(meta.image_id)["info"]
        w = meta.window
        with open_image(meta.source, bands=info.bands, stretch=info.stretch) as src:
            tile, _ = src.read_block(w)
            col = min(w.col_off + SHIFT, info.width - w.width)
            row = min(w.row_off + SHIFT, info.height - w.height)
            shifted, _ = src.read_block(Window(col, row, w.width, w.height))
        queries += [np.ascontiguousarray(f(tile)) for f in TRANSFORMS.values()]
        queries.append(shifted)
    raw = embed_all(model, np.stack(queries), progress=progress)
    aug = entry(store)
    vectors = raw
    if aug:
        vectors = np.stack([expand_query(store, v, int(aug["k"]), float(aug["alpha"]))
                            for v in raw])
    ranks = np.empty((len(ids), len(names)), np.int64)
    for i, src_id in enumerate(ids):
        for j in range(len(names)):
            d = distances(store, vectors[i * len(names) + j], metric)
            if aug and raw_weight:
                d = blend(raw_distances(store, raw[i * len(names) + j]), d, raw_weight)
            ranks[i, j] = int((d < d[src_id]).sum()) + 1
    return TransformReport(
        samples=len(ids),
        rank1={n: round(float((ranks[:, j] == 1).mean()), 4) for j, n in enumerate(names)},
        top10={n: round(float((ranks[:, j] <= 10).mean()), 4) for j, n in enumerate(names)},
    )
