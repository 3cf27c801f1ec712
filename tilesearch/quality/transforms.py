"""The label-free check: transformed copies of indexed tiles (turned, mirrored, brightness and
contrast shifted, JPEG re-compressed, shifted) query the store and should find their source."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tilesearch.models import Fingerprinter
from tilesearch.quality.labelled import embed_all
from tilesearch.raster import open_image
from tilesearch.retrieval import DEFAULT_METRIC
from tilesearch.tiling import Window


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


def robustness(store: Any, model: Fingerprinter, *, samples: int = 100, seed: int = 0,
                    metric: str = DEFAULT_METRIC, raw_weight: float = 0.0,
                    progress: Callable[[int], None] | None = None) -> TransformReport:
    """Query `store` with transformed copies of `samples` random indexed tiles (seeded).

    On an augmented store the copies are expanded into its space, as image searches are, and
    `raw_weight` > 0 mixes in their raw distance to every tile (`retrieval.mix_raw`)."""
    from tilesearch.retrieval import (
        blend,
        check_raw_weight,
        distances,
        expand_query,
        raw_distances,
    )

    store.check_model(model.identity)
    check_raw_weight(raw_weight, metric)
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(store.count, size=min(samples, store.count), replace=False))
    names = [*TRANSFORMS, "shift32"]
    raw = embed_all(model, np.stack(_copies(store, ids)), progress=progress)
    aug = store.augmentation
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


def _copies(store: Any, ids: np.ndarray) -> list[np.ndarray]:
    """Each tile of `ids` under every transform, then shifted by `SHIFT` px, in that order."""
    out: list[np.ndarray] = []
    for meta in store.tiles(ids.tolist()):
        info = store.image_by_id(meta.image_id)["info"]
        w = meta.window
        shift = round(SHIFT * w.width / store.tile_size)  # in image px, at the store's GSD
        col = min(w.col_off + shift, info.width - w.width)
        row = min(w.row_off + shift, info.height - w.height)
        with open_image(meta.source, bands=info.bands, stretch=info.stretch) as src:
            tile, shifted = (t.pixels for t in src.read_tiles(
                [w, Window(col, row, w.width, w.height)], store.tile_size))
        out += [np.ascontiguousarray(f(tile)) for f in TRANSFORMS.values()]
        out.append(shifted)
    return out
