"""How much of the CPU's float32 peak a network uses: multiply-accumulates per tile, counted
on its torch graph, against cores x clock x SIMD width x 2 (two FMA units a core, each one
multiply-accumulate per float32 lane and cycle)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np


def macs_per_tile(module: Any, tile: int = 256) -> int:
    """Multiply-accumulates of convolutions and linear layers for one uint8 NHWC tile (the
    recipe's views included), counted with forward hooks on one forward pass."""
    import torch

    total = 0

    def conv(m: Any, _inputs: Any, out: Any) -> None:
        nonlocal total
        k = int(np.prod(m.kernel_size))
        total += int(out.numel()) * (m.in_channels // m.groups) * k

    def linear(m: Any, _inputs: Any, out: Any) -> None:
        nonlocal total
        total += int(out.numel()) * m.in_features

    hooks = []
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(conv))
        elif isinstance(m, torch.nn.Linear):
            hooks.append(m.register_forward_hook(linear))
    try:
        with torch.no_grad():
            module(torch.zeros((1, tile, tile, 3), dtype=torch.uint8))
    finally:
        for h in hooks:
            h.remove()
    return total


def cpu_peak() -> dict[str, Any]:
    """This machine's float32 multiply-accumulate peak, from /proc/cpuinfo: the cores this
    process may run on, the clock the kernel reports (a VM's nominal one), the widest SIMD
    (AVX-512: 16 lanes, AVX2: 8, else SSE: 4)."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    mhz = [float(v) for v in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", text, re.M)]
    flags = set(re.search(r"^flags\s*:(.*)$", text, re.M).group(1).split()) if "flags" in text \
        else set()
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    cores = len(os.sched_getaffinity(0))
    ghz = max(mhz) / 1000 if mhz else float("nan")
    name = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    return {"cpu": name.group(1) if name else "unknown", "cores": cores, "ghz": ghz,
            "simd_lanes": lanes, "fma_units": 2,
            "peak_macs_per_s": cores * ghz * 1e9 * lanes * 2}


def peak_share(macs: int, tiles_per_s: float, peak: dict[str, Any]) -> float:
    """The share of the peak that `tiles_per_s` tiles of `macs` each keep busy."""
    return macs * tiles_per_s / peak["peak_macs_per_s"]
