"""Fingerprinting a block of overlapping tiles at once (block recipes, `recipes.BLOCK_RECIPES`).

At a stride of half the tile every pixel lies in four tiles, so tile-by-tile fingerprinting
runs the network over it four times. A block graph takes a block of `per_side` x `per_side`
tiles (tile + (per_side - 1) x stride px a side), averages it down as the tile recipe does,
and for each of its 4 quarter turns runs the stem and the first stages once over the whole
block; each tile's window of that feature map (aligned exactly: tile and stride are
multiples of the map's stride) goes through the rest of the network, and the tiles' pooled
fingerprints are turned back and averaged over the 4 turns, as ``rot4-128`` averages a
tile's. A 1 x 1 block is the tile recipe exactly. What changes is what a tile sees at an
edge it shares with a neighbour in its block: the neighbour's pixels instead of zero padding.
The trade-off (speed, UC Merced mAP, label-free checks) is measured by
``benchmarks/studies/shared_conv.py``: docs/benchmarks/indexing.md, "Sharing
convolutions".

The graph takes uint8 NHWC blocks, any batch, and returns (N x per_side^2, dim) fingerprints:
each block's tiles row by row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tilesearch.errors import ModelError
from tilesearch.models.recipes import BLOCK_RECIPES, RECIPES, BlockSharing

if TYPE_CHECKING:
    import torch


def block_side(tile_size: int, stride: int, per_side: int) -> int:
    """Pixels a side of a block of `per_side` x `per_side` tiles."""
    return tile_size + (per_side - 1) * stride


def check_geometry(recipe: str, tile_size: int, stride: int) -> None:
    """ModelError unless tiles of `tile_size` at `stride` line up with the shared map's cells
    (`BlockSharing.map_stride` px of the reduced tile) and overlap."""
    cell = RECIPES[recipe][0] * BLOCK_RECIPES[recipe].map_stride
    if tile_size % cell or stride % cell or not 0 < stride < tile_size:
        raise ModelError(f"recipe {recipe} needs a tile size and a stride that are multiples "
                         f"of {cell} px, the stride below the tile size (got tile {tile_size}, "
                         f"stride {stride}); use --recipe {BLOCK_RECIPES[recipe].tile_recipe}")


def check_tiling(recipe: str, tile_size: int, stride: int) -> None:
    """ModelError when a store of `tile_size` and `stride` cannot be indexed with `recipe`
    (a block recipe whose blocks the tiles do not line up with); nothing for other recipes."""
    if recipe in BLOCK_RECIPES:
        check_geometry(recipe, tile_size, stride)


def turn(x: Any, k: int) -> Any:
    """``torch.rot90(x, k, dims=(2, 3))`` of an NCHW tensor from transposes and flips (ONNX
    has no rot90)."""
    k %= 4
    if k == 1:
        return x.transpose(2, 3).flip(2)
    if k == 2:
        return x.flip(2).flip(3)
    return x.transpose(2, 3).flip(3) if k == 3 else x


def block_module(tile_net: torch.nn.Module, recipe: str, tile_size: int, stride: int,
                 per_side: int | None = None) -> torch.nn.Module:
    """The block graph of `recipe` over `tile_net` (a `runtime.tile_module` whose network can
    be split: ``front``/``back``/``cut``, as `efficientnet_lite.MultiLevel`). `per_side`
    overrides the recipe's block (1: a single tile, for tests)."""
    import torch
    import torch.nn.functional as F

    sharing: BlockSharing = BLOCK_RECIPES[recipe]
    net: Any = getattr(tile_net, "net", None)
    normalise: Any = getattr(tile_net, "normalise", None)
    if net is None or normalise is None or not hasattr(net, "front"):
        raise ModelError(f"recipe {recipe} needs a model that can be split after its first "
                         f"stages; use --recipe {sharing.tile_recipe}")
    cut = net.cut(sharing.stages)
    if 2 * _strides(net.net.stages[:sharing.stages]) != sharing.map_stride:
        raise ModelError(f"recipe {recipe} expects a map stride of {sharing.map_stride} after "
                         f"{sharing.stages} stages; use --recipe {sharing.tile_recipe}")
    check_geometry(recipe, tile_size, stride)
    factor = RECIPES[recipe][0]
    r = per_side or sharing.per_side
    cell = factor * sharing.map_stride
    t, s = tile_size // cell, stride // cell

    class Blocks(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, blocks: torch.Tensor) -> torch.Tensor:
            x = normalise(blocks.permute(0, 3, 1, 2).float())
            if factor > 1:
                x = F.avg_pool2d(x, factor)
            acc: torch.Tensor | None = None
            for k in range(4):
                m = self.net.front(turn(x, k), cut)
                crops = torch.cat([m[:, :, i * s:i * s + t, j * s:j * s + t]
                                   for i in range(r) for j in range(r)])
                f = self.net.back(crops, cut)  # (r * r * N, dim), slot-major
                dim = int(f.shape[1])
                grid = turn(f.reshape(r, r, -1, dim).permute(2, 3, 0, 1), -k)
                acc = grid if acc is None else acc + grid
            assert acc is not None
            return (acc / 4).permute(0, 2, 3, 1).reshape(-1, int(acc.shape[1]))

    return Blocks().eval()


def _strides(stages: Any) -> int:
    out = 1
    for stage in stages:
        out *= stage[2]
    return out
