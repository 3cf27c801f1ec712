"""One ground scale per store: the same place found across ground resolutions.

    python -m benchmarks.targets.scale [--quick] [--queries 200]

Each ortho of ``../shared/data/orthos`` is written again 2x and 4x coarser (rasterio,
average resampling, the same origin), and the three copies go into one store, three ways:

* ``native``: every image at its own pixels (tilesearch before ``--gsd``; the baseline),
* ``gsd coarsest``: ``--gsd`` of the 4x copy, so every copy is read decimated to it,
* ``gsd auto``: the default, the first (native) image's resolution; the 2x copy is upsampled
  (``--max-upsample`` 2) and the 4x copy is skipped.

For every ordered pair of copies (A, B), up to ``--queries`` tiles of A each query the tiles
of B by the store's raw fingerprints (cosine); the query counts as found when B's best tile
is centred within a quarter of a tile's ground side of the query's centre (the larger side
of the two, so the native baseline gets the nearest of its smaller tiles). Reported: the
rank-1 rate of each pair and the minimum over pairs (target >= 0.90).

The single-scale label-free check (``quality.robustness``: turned, mirrored, shifted copies
of 100 tiles) runs on a store of the native ortho alone under ``--gsd auto``, and its
fingerprints are compared with the native store's: ``--gsd auto`` must not change a single
tile of a one-resolution survey. Writes ``benchmarks/results/scale.json``.
"""

from __future__ import annotations

import argparse
import itertools
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.data import ORTHOS, require
from benchmarks.common.results import save
from tilesearch import api
from tilesearch.quality import robustness
from tilesearch.retrieval import raw_fingerprints
from tilesearch.store import Store

FACTORS = (1, 2, 4)
QUICK_SIDE = 3072


def coarser_copies(src_path: Path, out: Path, crop: int | None) -> list[Path]:
    """The ortho (centre-cropped to `crop` px when given) at each of FACTORS, one origin."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.windows import Window

    paths = []
    with rasterio.open(src_path) as src:
        w, h = (min(crop, src.width), min(crop, src.height)) if crop else (src.width, src.height)
        win = Window((src.width - w) // 2, (src.height - h) // 2, w, h)
        base = src.window_transform(win)
        for f in FACTORS:
            data = src.read(window=win, out_shape=(src.count, h // f, w // f),
                            resampling=Resampling.average)
            profile = {**src.profile, "driver": "GTiff", "width": w // f, "height": h // f,
                       "transform": base * base.scale(f, f), "compress": "deflate",
                       "tiled": True, "blockxsize": 256, "blockysize": 256}
            profile.pop("photometric", None)
            p = out / f"{src_path.stem}_x{f}.tif"
            with rasterio.open(p, "w", **profile) as dst:
                dst.write(data)
                dst.colorinterp = src.colorinterp
            paths.append(p)
    return paths


def _tiles_by_image(s: Store) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per image file name: tile ids, CRS centres (n, 2) and ground sides (n,)."""
    out = {}
    for row in s.images():
        ids = np.sort(s.tile_ids_of_images([row["id"]]))
        metas = s.tiles(ids.tolist())
        b = np.array([m.bounds for m in metas], np.float64)
        centres = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], 1)
        out[Path(row["info"].path).name] = (ids, centres, b[:, 2] - b[:, 0])
    return out


def rank1_across(s: Store, queries: int, seed: int = 0) -> dict[str, float]:
    """The rank-1 rate of each ordered pair of images: see the module docstring."""
    tiles = _tiles_by_image(s)
    rng = np.random.default_rng(seed)
    rates = {}
    for a, b in itertools.permutations(sorted(tiles), 2):
        ids_a, cen_a, side_a = tiles[a]
        ids_b, cen_b, side_b = tiles[b]
        pick = np.sort(rng.choice(len(ids_a), min(queries, len(ids_a)), replace=False))
        qa = _unit(raw_fingerprints(s, ids_a[pick]))
        db = _unit(raw_fingerprints(s, ids_b))
        best = np.argmax(qa @ db.T, axis=1)
        gap = np.hypot(*(cen_a[pick] - cen_b[best]).T)
        rates[f"{a} -> {b}"] = float(np.mean(gap <= np.maximum(side_a[pick],
                                                               side_b[best]) / 4))
    return rates


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def one_ortho(ortho: Path, work: Path, crop: int | None, queries: int) -> dict[str, Any]:
    copies = coarser_copies(ortho, work, crop)
    runs: dict[str, Any] = {}
    coarsest = _gsd(copies[-1])
    for name, gsd in (("native", "native"), ("gsd coarsest", coarsest), ("gsd auto", "auto")):
        store = work / f"{ortho.stem}-{name.replace(' ', '_')}.tiles"
        t = time.perf_counter()
        report = api.index([str(p) for p in copies], store, gsd=gsd)
        seconds = time.perf_counter() - t
        with Store.open(store) as s:
            rates = rank1_across(s, queries)
            runs[name] = {"gsd": s.gsd_setting, "tiles": s.count, "index_s": round(seconds, 1),
                          "skipped": [(Path(p).name, r) for p, r in report.failed],
                          "rank1": {k: round(v, 3) for k, v in rates.items()},
                          "rank1_min": round(min(rates.values()), 3) if rates else None}
        print(f"  {name:13} gsd {runs[name]['gsd']!s:9} {s.count:5} tiles  min rank-1 "
              f"{runs[name]['rank1_min']}  " + "  ".join(f"{k} {v:.2f}" for k, v in
                                                         rates.items()))
    runs["label_free"] = label_free(copies[0], work, ortho.stem,
                                    work / f"{ortho.stem}-native.tiles")
    return runs


def label_free(native: Path, work: Path, stem: str, native_store: Path) -> dict[str, Any]:
    """The robustness check on the native copy alone under --gsd auto, and whether its
    fingerprints equal the native store's for the same image."""
    store = work / f"{stem}-single.tiles"
    api.index([str(native)], store)
    with Store.open(store) as one, Store.open(native_store) as both:
        ids_one = np.sort(one.tile_ids_of_images([1]))
        ids_both = np.sort(both.tile_ids_of_images([both.image(str(native.resolve()))["id"]]))
        same_windows = ([m.window for m in one.tiles(ids_one.tolist())]
                        == [m.window for m in both.tiles(ids_both.tolist())])
        diff = float(np.abs(raw_fingerprints(one, ids_one)
                            - raw_fingerprints(both, ids_both)).max()) if same_windows else None
        rates = robustness(one, api.store_fingerprinter(one), samples=100)
    print(f"  label-free on the native copy (gsd auto {one.gsd_setting}): min rank-1 "
          f"{min(rates.rank1.values()):.2f}; same windows as native: {same_windows}, max "
          f"fingerprint difference {diff}")
    return {"gsd": one.gsd_setting, "rank1": rates.rank1, "rank1_min": min(rates.rank1.values()),
            "same_windows_as_native": same_windows, "max_fingerprint_diff": diff}


def _gsd(path: Path) -> float:
    from tilesearch.raster import open_image

    with open_image(path) as src:
        assert src.info.gsd is not None
        return float(f"{src.info.gsd:.6g}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help=f"crop each ortho to its centre {QUICK_SIDE} px first")
    ap.add_argument("--queries", type=int, default=200, help="query tiles per pair")
    args = ap.parse_args(argv)
    folder = require(ORTHOS)
    out: dict[str, Any] = {"host": platform.node(), "quick": args.quick,
                           "queries": args.queries, "orthos": {}}
    with tempfile.TemporaryDirectory(prefix="tilesearch-scale-") as tmp:
        for ortho in sorted(folder.glob("*.tif")):
            print(ortho.name)
            work = Path(tmp) / ortho.stem
            work.mkdir()
            out["orthos"][ortho.name] = one_ortho(ortho, work, QUICK_SIDE if args.quick
                                                  else None, args.queries)
    save(out, "scale.json")


if __name__ == "__main__":
    main()
