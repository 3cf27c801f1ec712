"""Query vectors: from a stored tile, a lon/lat point, an image, or several examples."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from tilesearch.errors import QueryError
from tilesearch.models import Fingerprinter
from tilesearch.records import TileMeta
from tilesearch.retrieval.distances import fingerprints
from tilesearch.retrieval.results import Query
from tilesearch.store import Store
from tilesearch.tiling import centre_window


def combine_examples(positives: np.ndarray, negatives: np.ndarray | None = None,
                     gamma: float = 0.5) -> np.ndarray:
    """One query from several examples (Rocchio): ``mean(P) - gamma * mean(N)`` over the
    L2-normalised positive and negative fingerprints, scaled back to the positives' mean norm.

    The query moves toward what the positives share and away from what the negatives share.
    """
    p = np.atleast_2d(np.asarray(positives, dtype=np.float32))
    if len(p) == 0:
        raise QueryError("give at least one positive example")
    norms = np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
    q = (p / norms).mean(0)
    if negatives is not None and len(negatives):
        n = np.atleast_2d(np.asarray(negatives, dtype=np.float32))
        q = q - gamma * (n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)).mean(0)
    return q / max(float(np.linalg.norm(q)), 1e-12) * float(norms.mean())


def check_tile_id(store: Store, tile_id: int) -> None:
    """QueryError unless `tile_id` is a tile of the store."""
    if not 0 <= tile_id < store.count:
        raise QueryError(f"no tile {tile_id} in {store.path} "
                         f"(tile ids run from 0 to {store.count - 1})")


def tile_query(store: Store, tile_id: int) -> Query:
    """Query by a stored tile's id."""
    check_tile_id(store, tile_id)
    meta = store.tile(tile_id)
    return Query(fingerprints(store, [tile_id])[0], f"tile {tile_id}", tile=meta)


def lonlat_query(store: Store, lon: float, lat: float) -> Query:
    """Query by the stored tile whose centre is nearest to (lon, lat) among those covering it."""
    near = [t for t in store.tiles_near(lon, lat) if t.lonlat is not None]
    if not near:
        raise QueryError(f"no indexed tile covers lon/lat {lon:.6f},{lat:.6f} in {store.path}; "
                         "check the order (longitude first) and 'tilesearch info' for coverage")
    coslat = math.cos(math.radians(lat))

    def gap(t: TileMeta) -> float:
        assert t.lonlat is not None
        return ((t.lonlat[0] - lon) * coslat) ** 2 + (t.lonlat[1] - lat) ** 2

    best = min(near, key=lambda t: (gap(t), t.tile_id))
    q = tile_query(store, best.tile_id)
    q.description = f"lonlat {lon:.6f},{lat:.6f} (tile {best.tile_id})"
    return q


def image_query(store: Store, image: str | Path | np.ndarray, model: Fingerprinter,
                gsd: float | None = None) -> Query:
    """Query by an image of any size, a file or RGB pixels (H, W, 3) uint8, resampled to the
    store's tile size (bilinear). When both the store's ground resolution and the image's
    are known (`gsd` metres a pixel, else a georeferenced file's own), the query is the
    centre of the image covering one tile's ground, read at the store's resolution (the
    whole image where it covers less)."""
    store.check_model(model.identity)
    size = store.tile_size
    if isinstance(image, np.ndarray):
        side = ground_side(store, gsd)
        pixels, name = _pixels_at(_centre(image, side) if side else image, size), "pixels"
    else:
        from tilesearch.raster import open_image

        with open_image(image) as src:
            side = ground_side(store, gsd or src.info.gsd)
            if side:
                window = centre_window(src.info.width, src.info.height, side)
                pixels = src.read_scaled(window, size, size)[0]
            else:
                pixels = src.read_resized(size)
        name = Path(image).name
    vector = model.embed(pixels[None])[0]
    return Query(vector, f"image {name}", pixels=pixels)


def ground_side(store: Store, gsd: float | None) -> int | None:
    """Pixels across one tile's ground in an image of `gsd` metres a pixel (None: unknown)."""
    if not store.gsd or not gsd:
        return None
    return max(1, round(store.tile_size * store.gsd / gsd))


def _centre(image: np.ndarray, side: int) -> np.ndarray:
    if image.ndim != 3:
        return image  # refused by _pixels_at
    c = centre_window(image.shape[1], image.shape[0], side)
    return image[c.row_off:c.row_end, c.col_off:c.col_end]


def _pixels_at(image: np.ndarray, size: int) -> np.ndarray:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise QueryError(f"query pixels must be RGB uint8 of shape (H, W, 3), got "
                         f"{image.dtype} {image.shape}")
    if image.shape[:2] == (size, size):
        return np.ascontiguousarray(image)
    from PIL import Image

    small = Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(small)
