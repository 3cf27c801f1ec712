"""Tile grids as pure arithmetic on pixel windows: no file access here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, order=True)
class Window:
    """A pixel window: column and row offset of the top-left corner, width and height."""

    col_off: int
    row_off: int
    width: int
    height: int

    @property
    def col_end(self) -> int:
        return self.col_off + self.width

    @property
    def row_end(self) -> int:
        return self.row_off + self.height

    def overlaps(self, other: Window) -> bool:
        """True when the two windows share at least one pixel."""
        return (
            self.col_off < other.col_end
            and other.col_off < self.col_end
            and self.row_off < other.row_end
            and other.row_off < self.row_end
        )

    def intersection_area(self, other: Window) -> int:
        w = min(self.col_end, other.col_end) - max(self.col_off, other.col_off)
        h = min(self.row_end, other.row_end) - max(self.row_off, other.row_off)
        return max(w, 0) * max(h, 0)


def offsets(length: int, size: int, stride: int) -> list[int]:
    """Start offsets along one axis: every `stride`, plus a last one flush with the edge.

    An axis shorter than `size` yields no offset (the image is smaller than one tile).
    """
    if size <= 0 or stride <= 0:
        raise ValueError(f"tile size and stride must be positive, got {size} and {stride}")
    if length < size:
        return []
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def tile_grid(width: int, height: int, size: int, stride: int) -> list[Window]:
    """All tile windows of an image, row by row, covering the right and bottom edges."""
    return [
        Window(col, row, size, size)
        for row in offsets(height, size, stride)
        for col in offsets(width, size, stride)
    ]


@dataclass(frozen=True)
class Block:
    """Tiles fingerprinted together (block recipes): the block's window, which may reach
    past the image's edge, and its tiles as (place, window), place counting row by row
    across the block's `per_side` x `per_side` slots."""

    window: Window
    tiles: tuple[tuple[int, Window], ...]


def block_places(length: int, size: int, stride: int, per_side: int) -> dict[int, tuple[int, int]]:
    """Each tile offset along one axis (`offsets`) -> (its block's first offset, its place in
    the block). Runs of `per_side` offsets `stride` apart form a block from the first one;
    the last offset, flush with the edge and off the stride, starts a block of its own. A
    tile's block depends on the image and the tiling only, never on which tiles are read."""
    places: dict[int, tuple[int, int]] = {}
    starts = offsets(length, size, stride)
    i = 0
    while i < len(starts):
        first = starts[i]
        k = 0
        while k < per_side and i < len(starts) and starts[i] == first + k * stride:
            places[starts[i]] = (first, k)
            i, k = i + 1, k + 1
    return places


def group_blocks(windows: list[Window], width: int, height: int, size: int, stride: int,
                 per_side: int) -> list[Block]:
    """`windows` (tiles of the `tile_grid` of a width x height image) grouped into blocks of
    `per_side` x `per_side` tiles, row by row of blocks and each block's tiles by place: the
    order does not depend on which of a block's tiles are given."""
    cols = block_places(width, size, stride, per_side)
    rows = block_places(height, size, stride, per_side)
    side = size + (per_side - 1) * stride
    groups: dict[tuple[int, int], list[tuple[int, Window]]] = {}
    for w in windows:
        (col, j), (row, i) = cols[w.col_off], rows[w.row_off]
        groups.setdefault((col, row), []).append((i * per_side + j, w))
    return [Block(Window(col, row, side, side), tuple(sorted(groups[(col, row)])))
            for col, row in sorted(groups, key=lambda k: (k[1], k[0]))]


def batched(windows: list[Window], batch: int) -> Iterator[list[Window]]:
    """Consecutive groups of at most `batch` windows."""
    for i in range(0, len(windows), batch):
        yield windows[i : i + batch]


def block_of(windows: list[Window]) -> Window:
    """The smallest window that contains all the given windows (one read for a batch)."""
    col = min(w.col_off for w in windows)
    row = min(w.row_off for w in windows)
    return Window(
        col, row, max(w.col_end for w in windows) - col, max(w.row_end for w in windows) - row
    )


def coarse_fractions(coarse: np.ndarray, factor: int, windows: list[Window]) -> np.ndarray:
    """Estimated valid fraction of each window from a validity mask decimated by `factor`
    (cell ``(i, j)`` stands for pixels ``i*factor .. (i+1)*factor - 1``): the mean of the cells
    a window touches, by a summed-area table (one lookup a window)."""
    if not windows:
        return np.zeros(0)
    sat = np.zeros((coarse.shape[0] + 1, coarse.shape[1] + 1), np.int64)
    sat[1:, 1:] = np.cumsum(np.cumsum(coarse, axis=0, dtype=np.int64), axis=1)
    w = np.array([(x.col_off, x.row_off, x.col_end, x.row_end) for x in windows], np.int64)
    c0, r0 = w[:, 0] // factor, w[:, 1] // factor
    c1 = np.minimum(-(-w[:, 2] // factor), coarse.shape[1])
    r1 = np.minimum(-(-w[:, 3] // factor), coarse.shape[0])
    total = sat[r1, c1] - sat[r0, c1] - sat[r1, c0] + sat[r0, c0]
    cells = np.maximum((r1 - r0) * (c1 - c0), 1)
    return np.asarray(total / cells)


SCALE_TOLERANCE = 0.02
"""Images within 2 % of the store's ground resolution are read at native resolution: a
resampled read would change their tiles by less than a pixel across."""


def read_scale(store_gsd: float | None, image_gsd: float | None) -> float:
    """Image pixels per tile pixel when an image of `image_gsd` metres a pixel is read at
    `store_gsd` (above 1: the image is finer and is read decimated; below 1: upsampled).
    1.0 when either is unknown or they agree within `SCALE_TOLERANCE`."""
    if not store_gsd or not image_gsd:
        return 1.0
    scale = store_gsd / image_gsd
    return 1.0 if abs(scale - 1.0) <= SCALE_TOLERANCE else scale


def scaled_span(size: int, stride: int, scale: float) -> tuple[int, int]:
    """(window side, stride) in image px of tiles of `size` and `stride` read at `scale`."""
    if scale == 1.0:
        return size, stride
    return max(1, round(size * scale)), max(1, round(stride * scale))



def centre_window(width: int, height: int, side: int) -> Window:
    """The centre `side` px square of a width x height image, cut to the image."""
    w, h = min(side, width), min(side, height)
    return Window((width - w) // 2, (height - h) // 2, w, h)
