"""Fingerprint models behind one small interface (`Fingerprinter`), in a registry
(`load_model`), run on OpenVINO, ONNX Runtime or torch, on a CPU or a CUDA GPU.

torch, OpenVINO and ONNX Runtime are imported only when a model is loaded, and torch not at
all when the runtime's cached export already exists.
"""

from tilesearch.models.base import Fingerprinter, ModelIdentity
from tilesearch.models.blocks import check_tiling
from tilesearch.models.device import GPU_BATCH
from tilesearch.models.recipes import RECIPES, block_tiles
from tilesearch.models.registry import (
    DEFAULT_MODEL,
    DEFAULT_RECIPE,
    TILE_RECIPE,
    available_models,
    available_runtimes,
    default_recipe,
    load_model,
)

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_RECIPE",
    "GPU_BATCH",
    "RECIPES",
    "TILE_RECIPE",
    "Fingerprinter",
    "ModelIdentity",
    "available_models",
    "available_runtimes",
    "block_tiles",
    "check_tiling",
    "default_recipe",
    "load_model",
]
