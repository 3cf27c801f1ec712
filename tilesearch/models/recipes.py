"""Fingerprint recipes: how a tile is shown to the network before its features are pooled.

- ``plain``: the tile as it is, one pass.
- ``rot4-128``: the tile averaged 2x2 down to half size (256 -> 128 px), shown in its 4
  quarter turns; the fingerprint is the mean of the 4. Exactly invariant to 90-degree turns
  (aerial imagery has no "up"), and about the cost of one plain pass (4 passes over a quarter
  of the pixels).
- ``d4-128``: as ``rot4-128`` with each turn also mirrored (all 8 orientations of the dihedral
  group): exactly invariant to turns and mirrors, about twice the cost.
- ``rot4-128-blocks`` (the default): ``rot4-128`` with the work that overlapping tiles share
  done once. The indexer reads 2 x 2 blocks of tiles (384 px at the default tiling); the stem
  and first 3 stages run over each block's 4 turns, and each tile's window of that map goes
  through the rest of the network (`models.blocks`). Tiles inside a block see their
  neighbours' pixels instead of zero padding at the edges they share. A single tile (an image
  query) is fingerprinted as ``rot4-128`` does. Why: docs/decisions/
  2026-12-04-shared-stem-over-blocks.md.

A recipe is part of the model identity: a store never mixes fingerprints of two recipes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tilesearch.errors import ModelError

if TYPE_CHECKING:
    import torch

RECIPES = {"plain": (1, 1), "rot4-128": (2, 4), "d4-128": (2, 8), "rot4-128-blocks": (2, 4)}
"""Recipe name -> (downsampling factor of the tile, number of orientations averaged)."""


@dataclass(frozen=True)
class BlockSharing:
    """How a recipe shares work over blocks of tiles: `per_side` x `per_side` tiles a block,
    the stem and the first `stages` stages run once over the block, their output a map of
    one cell every `map_stride` px of the reduced tile; single tiles (queries) fingerprinted
    by recipe `tile_recipe`."""

    per_side: int
    stages: int
    map_stride: int
    tile_recipe: str


BLOCK_RECIPES = {"rot4-128-blocks": BlockSharing(per_side=2, stages=3, map_stride=8,
                                                 tile_recipe="rot4-128")}
"""Lite0's stem and stages 1-3 have strides 2, 1, 2 and 2: a map stride of 8."""


def block_tiles(recipe: str) -> int:
    """Tiles a side of the blocks `recipe` fingerprints together (1: tile by tile)."""
    sharing = BLOCK_RECIPES.get(recipe)
    return sharing.per_side if sharing else 1


def check_recipe(recipe: str) -> None:
    if recipe not in RECIPES:
        raise ModelError(f"unknown recipe {recipe!r}; choose one of: {', '.join(RECIPES)}")


def tile_recipe(recipe: str) -> str:
    """The recipe a single tile of `recipe` is fingerprinted with."""
    sharing = BLOCK_RECIPES.get(recipe)
    return sharing.tile_recipe if sharing else recipe


def apply_recipe(tile_net: torch.nn.Module, recipe: str) -> torch.nn.Module:
    """Wrap a module taking uint8-valued NHWC tiles so that it follows `recipe` (for a block
    recipe: as a single tile is fingerprinted)."""
    check_recipe(recipe)
    recipe = tile_recipe(recipe)
    if recipe == "plain":
        return tile_net
    import torch
    import torch.nn.functional as F

    factor, views_per_tile = RECIPES[recipe]

    class Dihedral(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = tile_net

        def forward(self, tiles: Any) -> Any:
            x = tiles.float()
            if factor > 1:
                x = F.avg_pool2d(x.permute(0, 3, 1, 2), factor).permute(0, 2, 3, 1)
            # the 4 quarter turns of NHWC tiles from transposes and flips (ONNX has no rot90)
            t = x.transpose(1, 2)
            turns = [x, t.flip(1), x.flip(1).flip(2), t.flip(2)]
            if views_per_tile == 8:
                turns += [torch.flip(t, dims=(2,)) for t in turns]
            out = self.net(torch.cat(turns, 0))
            return out.reshape(views_per_tile, x.shape[0], -1).mean(0)

    return Dihedral().eval()
