"""Fingerprint recipes: how a tile is shown to the network before its features are pooled.

- ``plain``: the tile as it is, one pass.
- ``d4-128``: the tile averaged 2x2 down to half size (256 -> 128 px), shown in all 8
  orientations of the dihedral group (4 rotations, each also mirrored); the fingerprint is the
  mean of the 8. It is exactly invariant to 90-degree turns and mirroring (aerial imagery has
  no "up"), and costs about 2 plain passes (8 passes over a quarter of the pixels).

A recipe is part of the model identity: a store never mixes fingerprints of two recipes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tilesearch.errors import ModelError

if TYPE_CHECKING:
    import torch

RECIPES = {"plain": 1, "d4-128": 2}
"""Recipe name -> downsampling factor of the tile before the network."""


def check_recipe(recipe: str) -> None:
    if recipe not in RECIPES:
        raise ModelError(f"unknown recipe {recipe!r}; choose one of: {', '.join(RECIPES)}")


def apply_recipe(tile_net: torch.nn.Module, recipe: str) -> torch.nn.Module:
    """Wrap a module taking uint8-valued NHWC tiles so that it follows `recipe`."""
    check_recipe(recipe)
    if recipe == "plain":
        return tile_net
    import torch
    import torch.nn.functional as F

    factor = RECIPES[recipe]

    class Dihedral(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = tile_net

        def forward(self, tiles: Any) -> Any:
            x = tiles.float()
            if factor > 1:
                x = F.avg_pool2d(x.permute(0, 3, 1, 2), factor).permute(0, 2, 3, 1)
            turns = [torch.rot90(x, k, dims=(1, 2)) for k in range(4)]
            views = torch.cat([*turns, *(torch.flip(t, dims=(2,)) for t in turns)], 0)
            out = self.net(views)
            return out.reshape(8, x.shape[0], -1).mean(0)

    return Dihedral().eval()
