"""The small interface every fingerprint model sits behind."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class ModelIdentity:
    """What a store records about the model that made its fingerprints.

    Two fingerprints are comparable only when their identities are equal.
    """

    name: str
    weights_sha256: str
    dim: int
    normalisation: str
    recipe: str = "plain"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelIdentity:
        return cls(
            name=str(data["name"]),
            weights_sha256=str(data["weights_sha256"]),
            dim=int(data["dim"]),
            normalisation=str(data["normalisation"]),
            recipe=str(data.get("recipe", "plain")),
        )


class Fingerprinter(Protocol):
    """Turns batches of RGB uint8 tiles into fingerprints.

    A model of a block recipe (`recipes.block_tiles` of its recipe > 1) also has
    ``for_blocks(stride)``: the fingerprinter the indexer hands blocks of tiles to, whose
    ``embed`` gives each block's tiles row by row (`runtime.CompiledFingerprinter`)."""

    identity: ModelIdentity
    runtime: str

    def embed(self, tiles: np.ndarray) -> np.ndarray:
        """Fingerprints of `tiles`, uint8 of shape (N, H, W, 3), as float32 of shape (N, dim)."""
        ...
