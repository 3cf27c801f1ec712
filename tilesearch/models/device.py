"""Where a model runs: ``cpu`` (OpenVINO, ONNX Runtime or torch) or ``cuda`` (torch on a GPU).

``auto`` picks ``cuda`` when torch sees a CUDA device, else ``cpu``. The check does not import
torch (2-3 s) on a machine without an NVIDIA driver: it looks for the driver's device files
first.

On a GPU, tiles are decoded on CPU threads as before (the indexer's reader), copied from
pinned host memory without blocking, and run in float16 autocast (``TILESEARCH_CUDA_DTYPE=
bfloat16`` for bf16) with channels-last convolutions (the uint8 NHWC batch, permuted to
NCHW, already is channels-last in memory) in batches of :data:`GPU_BATCH`. Fingerprints are
returned as float32; ``benchmarks/studies/gpu.py`` measures their agreement with the CPU path.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tilesearch.errors import ModelError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")
GPU_BATCH = 512
"""Tiles per inference call on a GPU (the CPU runtimes use ``runtime.MAX_BATCH``)."""
_DRIVER_FILES = ("/dev/nvidiactl", "/proc/driver/nvidia/version")


def cuda_available() -> bool:
    """True when torch is installed and sees a CUDA device (no torch import without a driver)."""
    if not any(Path(p).exists() for p in _DRIVER_FILES):
        return False
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda`` for a requested ``auto``, ``cpu`` or ``cuda``.

    Raises ModelError for an unknown name, or for ``cuda`` where no CUDA device is visible.
    """
    if device not in DEVICES:
        raise ModelError(f"unknown device {device!r}; choose one of: {', '.join(DEVICES)}")
    if device == "cpu":
        return "cpu"
    if cuda_available():
        return "cuda"
    if device == "cuda":
        raise ModelError("--device cuda: no CUDA device is visible to torch (no NVIDIA driver, "
                         "a CPU-only torch build, or CUDA_VISIBLE_DEVICES hides it); use "
                         "--device cpu, or auto to pick the GPU only when there is one")
    return "cpu"


def check_cuda_runtime(runtime: str) -> None:
    """The GPU path runs on torch: `runtime` must be ``auto`` or ``torch``."""
    if runtime not in ("auto", "torch"):
        raise ModelError(f"--device cuda runs on the torch runtime, not {runtime!r}; "
                         "use --runtime torch or auto")


def cuda_dtype() -> str:
    """The autocast dtype on a GPU: float16, or ``$TILESEARCH_CUDA_DTYPE`` (bfloat16)."""
    name = os.environ.get("TILESEARCH_CUDA_DTYPE", "float16")
    if name not in ("float16", "bfloat16", "float32"):
        raise ModelError(f"TILESEARCH_CUDA_DTYPE must be float16, bfloat16 or float32, "
                         f"not {name!r}")
    return name


def cuda_runner(module: torch.nn.Module, dtype: str | None = None) -> Callable[[np.ndarray],
                                                                              np.ndarray]:
    """A function running `module` (uint8 NHWC tiles -> features) on the current GPU."""
    import torch

    dev = torch.device("cuda")
    net = module.to(dev)
    net = net.to(memory_format=torch.channels_last).eval()  # type: ignore[call-overload]
    amp = getattr(torch, dtype or cuda_dtype())
    torch.backends.cudnn.benchmark = True

    def run(batch: np.ndarray) -> np.ndarray:
        host = torch.from_numpy(batch).pin_memory()
        x = host.to(dev, non_blocking=True)
        with torch.inference_mode(), torch.autocast("cuda", dtype=amp,
                                                    enabled=amp != torch.float32):
            out = net(x)
        return out.float().cpu().numpy()

    return run
