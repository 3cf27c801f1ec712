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
from tilesearch.ingest import index_images, layout_of, model_for, read_batches
from tilesearch.models import ModelIdentity, block_tiles
from tilesearch.options import CPU_BATCH, MAX_INVALID, STRIDE, TILE_SIZE
from tilesearch.raster import open_image
from tilesearch.store import Store
from tilesearch.tiling import tile_grid

DEFAULT_IMAGE = ORTHOS / "quarry_callas_france_cog_jpeg.tif"


class NullModel:
    """Returns zeros at once: indexing with it measures reading, tiling and storing alone
    (in blocks of `per_input` tiles for a block recipe, as indexing reads them)."""

    def __init__(self, identity: ModelIdentity, per_input: int = 1) -> None:
        self.identity = identity
        self.runtime = "none"
        self.per_input = per_input

    def embed(self, tiles: np.ndarray) -> np.ndarray:
        return np.zeros((len(tiles) * self.per_input, self.identity.dim), np.float32)

    def for_blocks(self, stride: int) -> NullModel:
        return NullModel(self.identity, block_tiles(self.identity.recipe) ** 2)


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


def model_batches(image: Path, fp: Any) -> tuple[Any, list[np.ndarray], int]:
    """What indexing `image` runs with `fp` (a fresh store's tiling, native pixels): the
    model as it runs (a block recipe's block graph), its inputs in the batches indexing reads
    (tiles, or blocks of tiles), and how many kept tiles they hold."""
    with open_image(image) as src:
        info = src.info
    grid = tile_grid(info.width, info.height, TILE_SIZE, STRIDE)
    layout = layout_of(fp, TILE_SIZE, STRIDE, STRIDE)
    batches = [b for b in read_batches(info, grid, layout, CPU_BATCH, 1 - MAX_INVALID) if b[1]]
    return model_for(fp, STRIDE), [b[2] for b in batches], sum(len(b[1]) for b in batches)


def ceiling(run: Any, batches: list[np.ndarray], tiles: int) -> float:
    """Tiles/s of the model alone over `batches` holding `tiles` tiles (`model_batches`), fed
    as indexing feeds it (`embed_batches`, the next batch started before the last ends, where
    the fingerprinter has it)."""
    stream = getattr(run, "embed_batches", None)
    start = time.perf_counter()
    for _ in stream(iter(batches)) if stream else map(run.embed, batches):
        pass
    return tiles / (time.perf_counter() - start)


def end_to_end(image: Path, runtime: str, folder: Path, recipe: str | None = None
               ) -> tuple[float, int, dict[str, Any]]:
    """Tiles/s of `tilesearch.api.index` into a new store, from the call to its return."""
    path = folder / f"e2e-{time.monotonic_ns()}.tiles"
    start = time.perf_counter()
    report = api.index([image], path, runtime=runtime, recipe=recipe)
    seconds = time.perf_counter() - start
    with Store.open(path) as done:
        size = store_size(done)
    return report.tiles_added / seconds, report.tiles_added, size


def read_ceiling(image: Path, identity: ModelIdentity, folder: Path) -> float:
    """Tiles/s of the pipeline with a model that costs nothing."""
    store = Store.create(folder / f"null-{time.monotonic_ns()}.tiles", identity)
    report = index_images([image], store, NullModel(identity), batch_size=CPU_BATCH)
    store.close()
    return report.tiles_per_second


def network_module(recipe: str | None = None) -> tuple[Any, int, int]:
    """The default model's torch graph under `recipe` (default: its default) as indexing runs
    it (uint8 NHWC in), the side of its input and the tiles an input holds: for a block
    recipe the block graph over 2 x 2 blocks. What the MACs count."""
    from tilesearch.models import DEFAULT_MODEL, block_tiles, default_recipe
    from tilesearch.models.blocks import block_module, block_side
    from tilesearch.models.recipes import apply_recipe
    from tilesearch.models.registry import _REGISTRY

    recipe = recipe or default_recipe(DEFAULT_MODEL)
    entry = _REGISTRY[DEFAULT_MODEL]
    net = entry.build(entry.locate(None))
    r = block_tiles(recipe)
    if r == 1:
        return apply_recipe(net, recipe), TILE_SIZE, 1
    return (block_module(net, recipe, TILE_SIZE, STRIDE), block_side(TILE_SIZE, STRIDE, r),
            r * r)
