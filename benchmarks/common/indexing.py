"""Indexing measurements shared by the indexing benchmarks: the image, its kept tiles in
memory, the model-only ceiling, `api.index` end to end, and the pipeline without a model."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.data import ORTHOS
from benchmarks.common.measure import store_size
from tilesearch import api
from tilesearch.ingest import index_images
from tilesearch.models import ModelIdentity
from tilesearch.options import CPU_BATCH, MAX_INVALID, STRIDE, TILE_SIZE
from tilesearch.raster import open_image
from tilesearch.store import Store
from tilesearch.tiling import tile_grid

DEFAULT_IMAGE = ORTHOS / "quarry_callas_france_cog_jpeg.tif"


class NullModel:
    """Returns zeros at once: indexing with it measures reading, tiling and storing alone."""

    def __init__(self, identity: ModelIdentity) -> None:
        self.identity = identity
        self.runtime = "none"

    def embed(self, tiles: np.ndarray) -> np.ndarray:
        return np.zeros((len(tiles), self.identity.dim), np.float32)


def crop(image: Path, size: int, folder: Path) -> Path:
    """The central size x size pixels of `image` as a tiled GeoTIFF (JPEG as the source)."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(image) as src:
        w = Window((src.width - size) // 2, (src.height - size) // 2, size, size)
        profile = src.profile | {"width": size, "height": size, "driver": "GTiff",
                                 "transform": src.window_transform(w), "tiled": True,
                                 "blockxsize": 256, "blockysize": 256}
        data, mask = src.read(window=w), src.dataset_mask(window=w)
    out = folder / f"crop-{size}-{image.name}"
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
        dst.write_mask(mask)
    return out


@contextmanager
def image_for(image: Path, crop_px: int) -> Iterator[Path | None]:
    """`image`, or its central `crop_px` square in a temporary file (0: the whole image);
    None, with a note printed, where the image is missing."""
    if not image.exists():
        print(f"skipped: {image} not found (the real orthomosaics live in ../shared/data)")
        yield None
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield crop(image, crop_px, Path(tmp)) if crop_px else image


def kept_tiles(image: Path) -> np.ndarray:
    """The tiles tilesearch keeps of `image` (native pixels, 128 px grid), in memory."""
    with open_image(image) as src:
        grid = tile_grid(src.info.width, src.info.height, TILE_SIZE, STRIDE)
        tiles = [t.pixels for t in src.read_tiles(grid) if t.valid_fraction >= 1 - MAX_INVALID]
    return np.stack(tiles)


def ceiling(fp: Any, tiles: np.ndarray, batch: int) -> float:
    """Tiles/s of the fingerprinter alone over `tiles`, in batches of `batch`, fed as
    indexing feeds it (`embed_batches`, the next batch started before the last ends, where
    the fingerprinter has it)."""
    batches = (tiles[i:i + batch] for i in range(0, len(tiles), batch))
    stream = getattr(fp, "embed_batches", None)
    start = time.perf_counter()
    for _ in stream(batches) if stream else map(fp.embed, batches):
        pass
    return len(tiles) / (time.perf_counter() - start)


def end_to_end(image: Path, runtime: str, folder: Path) -> tuple[float, int, dict[str, Any]]:
    """Tiles/s of `tilesearch.api.index` into a new store, from the call to its return."""
    path = folder / f"e2e-{time.monotonic_ns()}.tiles"
    start = time.perf_counter()
    report = api.index([image], path, runtime=runtime)
    seconds = time.perf_counter() - start
    with Store.open(path) as done:
        size = store_size(done)
    return report.tiles_added / seconds, report.tiles_added, size


def read_ceiling(image: Path, identity: ModelIdentity, folder: Path) -> float:
    """Tiles/s of the pipeline with a model that costs nothing."""
    store = Store.create(folder / "null.tiles", identity)
    report = index_images([image], store, NullModel(identity), batch_size=CPU_BATCH)
    store.close()
    return report.tiles_per_second


def network_module() -> Any:
    """The default fingerprint's torch graph (uint8 NHWC tiles in): what the MACs count."""
    from tilesearch.models import DEFAULT_MODEL, DEFAULT_RECIPE
    from tilesearch.models.recipes import apply_recipe
    from tilesearch.models.registry import _REGISTRY

    entry = _REGISTRY[DEFAULT_MODEL]
    return apply_recipe(entry.build(entry.locate(None)), DEFAULT_RECIPE)
