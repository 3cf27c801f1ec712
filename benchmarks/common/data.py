"""The benchmarks' data: the real imagery in ../shared/data (skipped cleanly when absent), and
what is derived from it once and cached under benchmarks/results/.

- ``ORTHOS``: the real orthomosaics (GeoTIFF); ``real_fingerprints`` indexes them with the
  default model into ``REAL_STORE`` on first use (``real_store`` for another recipe).
- ``UCMERCED``: UC Merced Land Use, ``<class>/<image>``; ``ucm_fingerprints`` embeds it with
  the default fingerprinter into ``UCM_CACHE`` on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import numpy as np

from benchmarks.common.results import RESULTS_DIR

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
ORTHOS = SHARED_DATA / "orthos"
UCMERCED = SHARED_DATA / "ucmerced"
REAL_STORE = RESULTS_DIR / "orthos.tiles"
UCM_CACHE = RESULTS_DIR / "ucm-fingerprints.npz"


def skip(reason: str) -> NoReturn:
    """End the benchmark cleanly (exit status 0) with a one-line note of why it did not run."""
    print(f"skipped: {reason}")
    raise SystemExit(0)


def require(folder: Path, what: str = "the real data lives in ../shared/data") -> Path:
    """`folder`, or skip the benchmark when it is not there."""
    if not Path(folder).exists():
        skip(f"{folder} not found ({what})")
    return Path(folder)


def real_store(recipe: str | None = None) -> Path:
    """The store of the real orthomosaics indexed with the default model and `recipe`
    (default: its default recipe): ``REAL_STORE``, or ``orthos-<recipe>.tiles`` beside it for
    another recipe; indexed from ``ORTHOS`` on first use, and again when the cached one was
    made with another model or recipe."""
    import shutil

    from tilesearch import index
    from tilesearch.models import DEFAULT_MODEL, default_recipe
    from tilesearch.store import Store

    want = recipe or default_recipe(DEFAULT_MODEL)
    path = REAL_STORE if want == default_recipe(DEFAULT_MODEL) else (
        RESULTS_DIR / f"orthos-{want}.tiles")
    if (path / "manifest.json").exists():
        with Store.open(path) as s:
            made = (s.identity.name, s.identity.recipe)
        if made == (DEFAULT_MODEL, want):
            return path
        shutil.rmtree(path)
    if not ORTHOS.is_dir():
        skip(f"no real imagery at {ORTHOS}")
    index(ORTHOS, path, progress=True, recipe=want)
    return path


def real_fingerprints(recipe: str | None = None) -> np.ndarray:
    """The default model's fingerprints of every tile of the real orthomosaics (float32),
    from `real_store(recipe)`."""
    from tilesearch.store import Store

    with Store.open(real_store(recipe)) as s:
        return np.array(s.vectors(), np.float32)


def ucm_fingerprints() -> tuple[np.ndarray, list[str]]:
    """The default fingerprinter's vectors of UC Merced and their class labels (cached)."""
    if UCM_CACHE.exists():
        z = np.load(UCM_CACHE)
        return z["x"], list(z["labels"])
    from tilesearch import load_fingerprinter, quality

    require(UCMERCED, "UC Merced lives in ../shared/data")
    paths, labels = quality.labelled_images(UCMERCED)
    model = load_fingerprinter()
    x = quality.embed_all(model, quality.read_resized(paths, 256))
    UCM_CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.savez(UCM_CACHE, x=x, labels=np.asarray(labels))
    return x, labels


def real_blocks(data: Path, n: int, per_side: int = 2) -> np.ndarray:
    """Up to `n` blocks of `per_side` x `per_side` valid tiles (as a block recipe's model
    takes them) spread evenly over the images under `data`."""
    from tilesearch.options import STRIDE, TILE_SIZE
    from tilesearch.raster import find_images, open_image
    from tilesearch.tiling import group_blocks, tile_grid

    files, _ = find_images([data])
    out = []
    side = TILE_SIZE + (per_side - 1) * STRIDE
    for f in files:
        with open_image(f) as src:
            info = src.info
            grid = tile_grid(info.width, info.height, TILE_SIZE, STRIDE)
            blocks = [b for b in group_blocks(grid, info.width, info.height, TILE_SIZE, STRIDE,
                                              per_side) if len(b.tiles) == per_side ** 2]
            for b in blocks[:: max(1, len(blocks) // (n // len(files) * 2))]:
                pixels, valid = src.read_padded(b.window.col_off, b.window.row_off, side)
                if valid.mean() >= 0.99:
                    out.append(pixels)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(out), size=min(n, len(out)), replace=False)
    return np.stack([out[i] for i in sorted(idx)])


def real_tiles(data: Path, n: int) -> np.ndarray:
    """Up to `n` valid tiles spread evenly over the grids of the images under `data`."""
    from tilesearch.options import STRIDE, TILE_SIZE
    from tilesearch.raster import find_images, open_image
    from tilesearch.tiling import tile_grid

    files, _ = find_images([data])
    out = []
    for f in files:
        with open_image(f) as src:
            grid = tile_grid(src.info.width, src.info.height, TILE_SIZE, STRIDE)
            pick = grid[:: max(1, len(grid) // (n // len(files) * 2))]
            out += [t.pixels for t in src.read_tiles(pick) if t.valid_fraction >= 0.99]
    rng = np.random.default_rng(0)
    idx = rng.choice(len(out), size=min(n, len(out)), replace=False)
    return np.stack([out[i] for i in sorted(idx)])
