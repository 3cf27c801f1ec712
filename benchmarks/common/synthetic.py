"""Synthetic fingerprints and stores, and the prototype's search method to time against.

Two kinds of fingerprints:

- ``make_fingerprints`` (bench search, serve): 512 non-negative values per tile (as
  post-ReLU global-average-pooled CNN features are), drawn around 64 cluster centres
  (land-cover kinds) laid out in patches over 8 fake images; a tile is the mean of the four
  128 px cells it covers, so tiles that overlap (stride 128, size 256) have similar
  fingerprints, as in real data. ``build_store`` writes them into a real store.
- ``Synth`` (search index at scale, second stage): drawn from real fingerprints, points along
  the segments between real neighbours moved by a small step along a real local difference
  (see ``benchmarks.targets.ann``); rows are reproducible from their draws.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.measure import timed
from tilesearch.models import ModelIdentity
from tilesearch.records import ImageInfo, Tile
from tilesearch.store import Store
from tilesearch.tiling import Window

DIM = 512
K = 10
IMAGES = 8
CLUSTERS = 64
STRIDE, SIZE = 128, 256
IDENTITY = ModelIdentity("bench", "b" * 64, DIM, "synthetic")


# ----- synthetic fingerprints on tile grids ---------------------------------------------------
def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) of the tile grid of each of the IMAGES images, holding at least n tiles."""
    per_image = math.ceil(n / IMAGES)
    cols = math.ceil(math.sqrt(per_image))
    return math.ceil(per_image / cols), cols


def image_fingerprints(
    rng: np.random.Generator, centres: np.ndarray, rows: int, cols: int
) -> np.ndarray:
    """(rows * cols, DIM) float32 fingerprints of one image's tiles, row by row."""
    patch = 12
    labels = rng.integers(0, CLUSTERS, (rows // patch + 2, cols // patch + 2))
    cell_labels = np.repeat(np.repeat(labels, patch, 0), patch, 1)[: rows + 1, : cols + 1]
    cells = np.empty((rows + 1, cols + 1, DIM), np.float32)
    for r in range(rows + 1):
        noise = rng.lognormal(0.0, 0.5, (cols + 1, DIM)).astype(np.float32)
        cells[r] = centres[cell_labels[r]] * noise
    tiles = (cells[:-1, :-1] + cells[1:, :-1] + cells[:-1, 1:] + cells[1:, 1:]) / 4
    return tiles.reshape(rows * cols, DIM)


def make_fingerprints(n: int, seed: int = 0) -> np.ndarray:
    """(n, DIM) float32 non-negative fingerprints, image by image, each image row by row."""
    rng = np.random.default_rng(seed)
    centres = rng.gamma(0.7, 1.0, (CLUSTERS, DIM)).astype(np.float32)
    centres *= rng.random((CLUSTERS, DIM)) > 0.2  # post-ReLU features: some are zero
    rows, cols = grid_shape(n)
    parts = [image_fingerprints(rng, centres, rows, cols) for _ in range(IMAGES)]
    return np.concatenate(parts)[:n]


def windows(n: int) -> list[tuple[int, Window]]:
    """(image number, window) of tile i, in the order of `make_fingerprints`."""
    rows, cols = grid_shape(n)
    out = []
    for i in range(n):
        image, j = divmod(i, rows * cols)
        r, c = divmod(j, cols)
        out.append((image, Window(c * STRIDE, r * STRIDE, SIZE, SIZE)))
    return out


def tile_name(image: int, w: Window) -> str:
    return f"img{image:02d}_r{w.row_off:06d}_c{w.col_off:06d}"


def build_store(path: Path, vectors: np.ndarray, chunk: int = 20000) -> Store:
    """A real store holding `vectors`, with minimal tile records on fake image grids."""
    dim = vectors.shape[1]
    store = Store.create(path, IDENTITY if dim == DIM else
                         ModelIdentity("bench", "b" * 64, dim, "synthetic"))
    rows, cols = grid_shape(len(vectors))
    wins = windows(len(vectors))
    valid = np.ones((1, 1), bool)
    empty = np.empty((0, 0, 3), np.uint8)
    for image in range(IMAGES):
        lo, hi = image * rows * cols, min(len(vectors), (image + 1) * rows * cols)
        if lo >= hi:
            break
        name = f"/bench/img{image:02d}.tif"
        info = ImageInfo(
            path=name,
            width=(cols + 1) * STRIDE,
            height=(rows + 1) * STRIDE,
            band_count=3,
            dtype="uint8",
            bands=(1, 2, 3),
            crs=None,
            transform=None,
            mask="zero",
            size_bytes=0,
            mtime=0.0,
        )
        image_id = store.begin_image(info)
        for start in range(lo, hi, chunk):
            stop = min(hi, start + chunk)
            tiles = [
                Tile(source=name, window=w, pixels=empty, valid=valid) for _, w in wins[start:stop]
            ]
            store.append(image_id, tiles, vectors[start:stop])
        store.finish_image(image_id)
    return store


def served_store(n: int) -> Path:
    """The cached synthetic store of n tiles the web benchmarks serve
    (benchmarks/results/serve-store-N.tiles, built on first use)."""
    import time

    from benchmarks.common.results import RESULTS_DIR

    path = RESULTS_DIR / f"serve-store-{n}.tiles"
    if (path / "manifest.json").exists():
        return path
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    build_store(path, make_fingerprints(n)).close()
    print(f"built {path} in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


# ----- the prototype's method -------------------------------------------------------------------
def prototype_search(
    index: dict[str, Any], query: np.ndarray, k: int = K
) -> list[tuple[Any, str]]:
    """The prototype: a Python loop over every item, a full sort, the first k."""
    scored = []
    for name, v in index.items():
        scored.append((np.linalg.norm(query - v), name))
    return sorted(scored)[:k]


def measure_lists(vectors: np.ndarray, names: list[str], qids: np.ndarray) -> dict[str, Any]:
    """The prototype with Python lists of floats as dict values, as json.load gives them."""
    index = {name: vectors[i].tolist() for i, name in enumerate(names)}
    times = [timed(prototype_search, index, vectors[q])[0] for q in qids]
    return {
        "prototype_lists_median_s": statistics.median(times),
        "prototype_lists_queries": len(times),
    }


def prototype_seconds(n: int) -> float:
    """The prototype's dict-of-lists loop at n tiles (512-d, `make_fingerprints`), 3 queries."""
    vecs = make_fingerprints(n)
    names = [tile_name(i, w) for i, w in windows(n)]
    return float(measure_lists(vecs, names, np.arange(3))["prototype_lists_median_s"])


# ----- fingerprints drawn from real ones ----------------------------------------------------------
def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class Synth:
    """Draws fingerprints from real ones (see the module docstring); rows are reproducible
    from their draws, so exact vectors of any id can be rebuilt for recall."""

    def __init__(self, real: np.ndarray) -> None:
        self.real = real
        unit = real / np.linalg.norm(real, axis=1, keepdims=True)
        sim = unit @ unit.T
        np.fill_diagonal(sim, -np.inf)
        self.nn = np.argsort(-sim, axis=1)[:, :10]

    def draws(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, 5) float64: a, b, t, c, s."""
        a = rng.integers(0, len(self.real), n)
        return np.stack([a, self.nn[a, rng.integers(0, 10, n)], rng.random(n),
                         rng.integers(0, len(self.real), n), rng.normal(0, 0.25, n)], 1)

    def vectors(self, d: np.ndarray) -> np.ndarray:
        a, b, c = d[:, 0].astype(int), d[:, 1].astype(int), d[:, 3].astype(int)
        r = self.real
        x = r[a] + d[:, 2:3].astype(np.float32) * (r[b] - r[a])
        x += d[:, 4:5].astype(np.float32) * (r[c] - r[self.nn[c, 0]])
        return np.maximum(x, 0, out=x)


def no_top(queries: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Empty top lists for `track` to fill: similarities -inf, ids 0."""
    return (np.full((queries, width), -np.inf, np.float32),
            np.zeros((queries, width), np.int64))


def track(qn: np.ndarray, x: np.ndarray, offset: int, top_s: np.ndarray,
          top_i: np.ndarray) -> None:
    """Merge the exact top ``top_s.shape[1]`` of the queries over rows `x` (ids from
    `offset`)."""
    width = top_s.shape[1]
    sims = qn @ x.T
    part = np.argpartition(-sims, width - 1, axis=1)[:, :width]
    s_all = np.concatenate([top_s, np.take_along_axis(sims, part, 1)], 1)
    i_all = np.concatenate([top_i, part + offset], 1)
    best = np.argsort(-s_all, axis=1, kind="stable")[:, :width]
    top_s[:] = np.take_along_axis(s_all, best, 1)
    top_i[:] = np.take_along_axis(i_all, best, 1)


def exact_top(synth: Synth, draws: np.ndarray, queries: np.ndarray, width: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """The exact top `width` similarities and ids of the queries over the tiles `draws` make."""
    qn = unit(queries)
    top_s, top_i = no_top(len(queries), width)
    for lo in range(0, len(draws), 200_000):
        track(qn, unit(synth.vectors(draws[lo:lo + 200_000])), lo, top_s, top_i)
    return top_s, top_i


# ----- random model weights ---------------------------------------------------------------
def random_resnet18_weights(folder: Path) -> Path:
    """ResNet-18 weights of the right shapes, random (its ImageNet ones cannot be had offline;
    speed does not depend on the values)."""
    import torch

    from tilesearch.models.resnet18 import ResNet18

    generator = torch.Generator().manual_seed(0)
    state = {
        k: torch.randn(v.shape, generator=generator) * 0.05 if v.is_floating_point() else v
        for k, v in ResNet18().state_dict().items()
    }
    path = folder / "resnet18-random.pth"
    torch.save(state, path)
    return path
