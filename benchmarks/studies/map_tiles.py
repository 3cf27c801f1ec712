"""Time to the first map tiles of a big raster in the web app, without and with overviews.

    python -m benchmarks.studies.map_tiles [--size 20000] [--repeats 3]

Writes a synthetic seeded GeoTIFF of size x size px once (RGB uint8, tiled 256, deflate,
written in strips; coarse noise blocks plus fine noise) under benchmarks/results/map-tiles/,
then times what `tilesearch serve` does for a map tile on a fresh app (a new Pyramid, so
no preview cached): the coarsest tile (zoom 0, the whole image), a middle zoom and a
full-resolution tile. First with no overviews (the app then reads a decimated preview of the
whole image), then after `raster.build_overviews` (<image>.ovr beside it; build time printed),
then through a VRT with overviews in a store folder (the fallback for read-only folders).
Prints medians; the file stays in the OS page cache between runs (warm reads).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.results import RESULTS_DIR, save
from tilesearch import raster
from tilesearch.records import ImageInfo
from tilesearch.web.imagery import Pyramid, max_zoom


def write_big(path: Path, size: int, seed: int = 0) -> None:
    """size x size RGB GeoTIFF, tiled 256 + deflate, written 1024 rows at a time."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8",
               "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate",
               "crs": "EPSG:32633", "transform": from_origin(500000, 5300000, 0.05, 0.05)}
    tmp = path.with_suffix(".part.tif")
    with rasterio.open(tmp, "w", **profile) as ds:
        for row in range(0, size, 1024):
            h = min(1024, size - row)
            coarse = rng.integers(0, 200, (3, -(-h // 16), -(-size // 16)), dtype=np.uint8)
            block = np.repeat(np.repeat(coarse, 16, axis=1), 16, axis=2)[:, :h, :size]
            block += rng.integers(0, 56, block.shape, dtype=np.uint8)
            ds.write(block, window=((row, row + h), (0, size)))
    tmp.rename(path)


def first_tiles(source: Path, info: ImageInfo, overview_dir: Path | None) -> dict[str, float]:
    """Seconds to render the first zoom-0, middle-zoom and full-resolution tile on a new app."""
    zmax = max_zoom(info.width, info.height)
    pyramid = Pyramid(overview_dir)
    out = {}
    for name, z in (("zoom0", 0), ("zoom_mid", zmax // 2), ("full_res", zmax)):
        t0 = time.perf_counter()
        pyramid.render(info, z, 1 if z else 0, 1 if z else 0)
        out[name] = time.perf_counter() - t0
    return out


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 4) for k in runs[0]}


def clear(path: Path, store: Path) -> None:
    Path(f"{path}.ovr").unlink(missing_ok=True)
    for f in store.glob("*"):
        f.unlink()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    work = RESULTS_DIR / "map-tiles"
    work.mkdir(parents=True, exist_ok=True)
    path, store = work / f"ortho-{args.size}.tif", work / "store-overviews"
    store.mkdir(exist_ok=True)
    if not path.exists():
        t0 = time.perf_counter()
        write_big(path, args.size)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    clear(path, store)
    with raster.open_image(path) as src:
        info = src.info
    res: dict[str, Any] = {"size": args.size, "file_mb": round(path.stat().st_size / 1e6),
                           "machine": platform.node(), "repeats": args.repeats}
    res["no_overviews"] = medians([first_tiles(path, info, None) for _ in range(args.repeats)])
    print("no overviews:", res["no_overviews"], flush=True)
    t0 = time.perf_counter()
    _, levels = raster.build_overviews(path, store)
    res["build_beside_s"] = round(time.perf_counter() - t0, 2)
    res["levels"] = levels
    res["ovr_mb"] = round(Path(f"{path}.ovr").stat().st_size / 1e6, 1)
    print(f"built {path}.ovr (1/{levels}) in {res['build_beside_s']} s", flush=True)
    res["ovr_beside"] = medians([first_tiles(path, info, None) for _ in range(args.repeats)])
    print("with .ovr beside:", res["ovr_beside"], flush=True)
    clear(path, store)
    t0 = time.perf_counter()
    raster.build_overviews(path, store, beside=False)  # what a read-only folder gets
    res["build_vrt_s"] = round(time.perf_counter() - t0, 2)
    res["vrt_in_store"] = medians([first_tiles(path, info, store) for _ in range(args.repeats)])
    print("with VRT + .ovr in the store:", res["vrt_in_store"], flush=True)
    res["zoom0_speedup"] = round(res["no_overviews"]["zoom0"] / res["ovr_beside"]["zoom0"], 1)
    clear(path, store)
    save(res, "map-tiles.json")


if __name__ == "__main__":
    main()
