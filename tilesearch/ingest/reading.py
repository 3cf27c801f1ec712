"""Reading an image's tiles the way its model takes them: tile by tile, or in blocks of tiles
for a block recipe (`models.blocks`). Used by local indexing and by the Ray workers alike, so
a tile's pixels, and so its fingerprint, do not depend on where it was indexed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tilesearch.models import Fingerprinter, block_tiles
from tilesearch.raster import RasterSource
from tilesearch.records import ImageInfo, Tile
from tilesearch.tiling import Block, Window, batched, group_blocks

Batch = tuple[int, list[Tile], np.ndarray, np.ndarray | None]
"""(windows read, tiles kept, the model's input: their stacked pixels or their blocks', and
for blocks which of the model's outputs are the kept tiles' fingerprints; None for tiles)."""


@dataclass(frozen=True)
class Layout:
    """How an image's windows reach the model: tiles of `size` px `stride` apart as the model
    sees them (the store's tiling; windows of another side are read resampled), one by one
    (`per_side` 1) or in blocks of `per_side` x `per_side` tiles, whose windows lie `step`
    image px apart."""

    size: int
    stride: int
    per_side: int = 1
    step: int = 0

    @property
    def side(self) -> int:
        """Pixels a side of the model's input."""
        return self.size + (self.per_side - 1) * self.stride


def model_for(model: Fingerprinter, stride: int) -> Fingerprinter:
    """What runs the tiles of a store of `stride`: the model, or for a block recipe its
    block graph's fingerprinter (ModelError when the tiles cannot form blocks)."""
    if block_tiles(model.identity.recipe) > 1:
        blocks: Fingerprinter = model.for_blocks(stride)  # type: ignore[attr-defined]
        return blocks
    return model


def layout_of(model: Fingerprinter, size: int, stride: int, step: int) -> Layout:
    """The layout `model` takes a store's tiles in; `step` is their stride in image px."""
    return Layout(size, stride, block_tiles(model.identity.recipe), step)


def batches_of(info: ImageInfo, windows: list[Window], layout: Layout, batch_size: int
               ) -> Iterator[list[Window] | list[Block]]:
    """`windows` in batches of about `batch_size` tiles: windows, or whole blocks."""
    if layout.per_side == 1:
        yield from batched(windows, batch_size)
        return
    span = windows[0].width if windows else layout.size
    blocks = group_blocks(windows, info.width, info.height, span, layout.step, layout.per_side)
    yield from batched(blocks, max(1, batch_size // layout.per_side ** 2))  # type: ignore[arg-type]


def read_batch(src: RasterSource, batch: list[Any], layout: Layout, keep_from: float) -> Batch:
    """Read one batch of `batches_of`; tiles under `keep_from` valid pixels are dropped."""
    if layout.per_side == 1:
        tiles = src.read_tiles(batch, layout.size)
        kept = [t for t in tiles if t.valid_fraction >= keep_from - 1e-9]
        pixels = np.stack([t.pixels for t in kept]) if kept else np.empty((0, 0, 0, 3), np.uint8)
        return len(batch), kept, pixels, None
    return _read_blocks(src, batch, layout, keep_from)


EDGE_FILL = 128
"""What a block holds past the image's edge (invalid pixels): mid-grey, what the zero padding
of a tile read alone stands for once normalised, so that a tile at the image's edge sees about
what it sees alone."""


def _read_blocks(src: RasterSource, blocks: list[Block], layout: Layout, keep_from: float
                 ) -> Batch:
    """Each block read once at the scale of its tiles (`RasterSource.read_padded`: a tile's
    first pixel and its image edges land where a tile read alone has them; the second tile of
    a block may move by under an image pixel where the store's scale rounds the stride)."""
    r, size, stride = layout.per_side, layout.size, layout.stride
    kept: list[Tile] = []
    inputs: list[np.ndarray] = []
    take: list[int] = []
    for block in blocks:
        span = block.tiles[0][1].width
        scale = 1.0 if span == size else size / span
        pixels, valid = src.read_padded(block.window.col_off, block.window.row_off,
                                        layout.side, scale, EDGE_FILL)
        mine = []
        for place, w in block.tiles:
            y, x = divmod(place, r)
            y, x = y * stride, x * stride
            tile = Tile(src.path, w, pixels[y:y + size, x:x + size],
                        valid[y:y + size, x:x + size])
            if tile.valid_fraction >= keep_from - 1e-9:
                mine.append((place, tile))
        if mine:
            take.extend(len(inputs) * r * r + place for place, _ in mine)
            kept.extend(tile for _, tile in mine)
            inputs.append(pixels)
    src.locate(kept)
    stacked = np.stack(inputs) if inputs else np.empty((0, 0, 0, 3), np.uint8)
    return sum(len(b.tiles) for b in blocks), kept, stacked, np.asarray(take, np.int64)
