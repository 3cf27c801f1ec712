"""The prototype's indexing pipeline as it ran, the baseline tilesearch is measured against.

The prototype cut each image into 256 px tiles on a 128 px grid and saved each as a ``.npy``
file; then it loaded them one at a time, scaled them to [0, 1] and normalised them with the
ImageNet mean and deviation, ran ResNet-18 without its classifier in torch eager with a batch
of 1 (``torch.set_num_threads`` = the cores) and kept each fingerprint in a dict by file name.
Nothing is written anywhere else (no store, no fsync). ResNet-18's ImageNet weights cannot be
had offline: its weights are drawn at random, which leaves its speed as it was. Tiles that are
mostly nodata are skipped as tilesearch skips them, so both fingerprint the same tiles.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TILE, STRIDE = 256, 128
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


@dataclass
class PrototypeRun:
    tiles: int
    cut_s: float
    fingerprint_s: float

    @property
    def tiles_per_second(self) -> float:
        return self.tiles / (self.cut_s + self.fingerprint_s)


def resnet18() -> object:
    """ResNet-18 without its classifier, random weights, in eval mode (torch eager)."""
    import torch

    from tilesearch.models.resnet18 import ResNet18

    torch.manual_seed(0)
    return ResNet18().eval()


def cut_tiles(image: Path, folder: Path, max_invalid: float = 0.5) -> list[Path]:
    """Every 256 px window on the 128 px grid read with rasterio and saved as .npy, but those
    more than `max_invalid` nodata (by the dataset's mask)."""
    import rasterio
    from rasterio.windows import Window

    saved = []
    with rasterio.open(image) as src:
        for row in range(0, src.height - TILE + 1, STRIDE):
            for col in range(0, src.width - TILE + 1, STRIDE):
                w = Window(col, row, TILE, TILE)
                if (src.dataset_mask(window=w) > 0).mean() < 1 - max_invalid:
                    continue
                pixels = src.read([1, 2, 3], window=w).transpose(1, 2, 0)
                path = folder / f"{image.stem}_{col}_{row}.npy"
                np.save(path, pixels)
                saved.append(path)
    return saved


def run_prototype(image: Path, model: object | None = None) -> PrototypeRun:
    """Cut `image` into .npy tiles, then fingerprint them one by one into a dict; timed."""
    import torch

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    net = model or resnet18()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        files = cut_tiles(image, Path(tmp))
        t1 = time.perf_counter()
        fingerprints: dict[str, np.ndarray] = {}
        with torch.no_grad():
            for path in files:
                x = (np.load(path).astype(np.float32) / 255.0 - MEAN) / STD
                tensor = torch.from_numpy(x.transpose(2, 0, 1).copy())[None]
                fingerprints[path.name] = net(tensor)[0].numpy()  # type: ignore[operator]
        t2 = time.perf_counter()
    return PrototypeRun(len(fingerprints), t1 - t0, t2 - t1)
