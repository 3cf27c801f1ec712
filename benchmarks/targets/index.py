"""Indexing throughput end to end (read, tile, fingerprint, store) against the model-only
ceiling of the same runtime, measured in the same run.

    python -m benchmarks.targets.index [--data ../shared/data/orthos] [--runtime auto]

The ceiling is measured before and after the end-to-end run (the median of both is used), so
a machine that gets busier or quieter mid-run does not skew the ratio. Target: end to end at
least 90 % of the ceiling (issue 6; 80 % before). Also reports the store's bytes per tile and
compression ratio.

The prototype's pipeline is measured in the same run as the baseline: torch eager, batch of 1,
every tile read on its own, saved as ``.npy`` and read back before inference, over the first
``--baseline-tiles`` tiles kept (mostly-nodata windows are read and skipped, uncounted, as in
the end-to-end figure). Three baselines: the default model and recipe, the default network
on the plain 256 px tile, and the prototype's own model (ResNet-18, random weights of the same
shapes, since its ImageNet weights cannot be had offline; speed does not depend on the
values). Target: end to end at least 5x that.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.data import ORTHOS
from benchmarks.common.measure import model_ceiling
from benchmarks.common.measure import store_size as measure
from benchmarks.common.results import save
from benchmarks.common.synthetic import random_resnet18_weights
from tilesearch import load_fingerprinter
from tilesearch.ingest import index_images
from tilesearch.models import ModelIdentity
from tilesearch.store import Store

DEFAULT_DATA = ORTHOS


class NullModel:
    """Returns zeros at once: indexing with it measures reading, tiling and storing alone."""

    def __init__(self, identity: ModelIdentity) -> None:
        self.identity = identity
        self.runtime = "none"

    def embed(self, tiles: np.ndarray) -> np.ndarray:
        return np.zeros((len(tiles), self.identity.dim), np.float32)


def read_ceiling(data: Path, identity: ModelIdentity, batch: int, readers: int = 1) -> float:
    """Tiles/s of the pipeline with a model that costs nothing."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.create(Path(tmp) / "null.tiles", identity)
        report = index_images([data], store, NullModel(identity), batch_size=batch,
                              readers=readers)
        store.close()
    return report.tiles_per_second


def prototype_pipeline(data: Path, model: str | None, n_tiles: int,
                       recipe: str | None = None, weights: Path | None = None) -> float:
    """Tiles/s of the prototype's way: torch eager, batch 1, tiles saved as .npy, read back.

    Counts the tiles fingerprinted (windows that are mostly nodata are read and skipped, as
    the end-to-end figure counts only the tiles it keeps), over the first `n_tiles` of them."""
    from tilesearch.options import STRIDE, TILE_SIZE
    from tilesearch.raster import find_images, open_image
    from tilesearch.tiling import tile_grid

    fp = load_fingerprinter(model, weights=weights, runtime="torch", recipe=recipe)
    files, _ = find_images([data])
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.create(Path(tmp) / "proto.tiles", fp.identity)
        start = time.perf_counter()
        done = 0
        for f in files:
            with open_image(f) as src:
                image_id = store.begin_image(src.info)
                saved, kept = [], 0
                for w in tile_grid(src.info.width, src.info.height, TILE_SIZE, STRIDE):
                    tile = src.read_tiles([w])[0]
                    np.save(Path(tmp) / f"{image_id}-{len(saved)}.npy", tile.pixels)
                    saved.append(tile)
                    kept += tile.valid_fraction >= 0.5
                    if done + kept >= n_tiles:
                        break
            for i, tile in enumerate(saved):
                pixels = np.load(Path(tmp) / f"{image_id}-{i}.npy")
                if tile.valid_fraction >= 0.5:
                    store.append(image_id, [tile], fp.embed(pixels[None]))
                    done += 1
            if done >= n_tiles:
                break
        seconds = time.perf_counter() - start
        store.close()
    return done / seconds


def run(data: Path, model: str | None, runtime: str, batch: int,
        baseline_tiles: int = 200) -> dict[str, Any]:
    t0 = time.perf_counter()
    fp = load_fingerprinter(model, runtime=runtime)
    load_s = time.perf_counter() - t0
    ceilings = [model_ceiling(fp, batch=batch)]
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.create(Path(tmp) / "bench.tiles", fp.identity)
        report = index_images([data], store, fp, batch_size=batch)
        store.close()  # checkpoints SQLite's write-ahead log into the database
        with Store.open(store.path) as done:
            size = measure(done)
    ceilings.append(model_ceiling(fp, batch=batch))
    ceiling = statistics.median(ceilings)
    reading = read_ceiling(data, fp.identity, batch)
    reading_2 = read_ceiling(data, fp.identity, batch, readers=2)
    proto = prototype_pipeline(data, model, baseline_tiles) if baseline_tiles else 0.0
    # the prototype's own fingerprint: the plain network on the 256 px tile
    proto_plain = (prototype_pipeline(data, model, baseline_tiles, "plain")
                   if baseline_tiles else 0.0)
    # the prototype's own model: ResNet-18 (random weights of the same shapes), plain 256 px
    with tempfile.TemporaryDirectory() as tmp:
        proto_r18 = (prototype_pipeline(data, "resnet18", baseline_tiles, "plain",
                                        random_resnet18_weights(Path(tmp)))
                     if baseline_tiles else 0.0)
    e2e = report.tiles_per_second
    return {
        "model": fp.identity.name, "runtime": fp.runtime, "batch": batch, "data": str(data),
        "model_load_s": round(load_s, 2), "tiles": report.tiles_added,
        "images": len(report.indexed), "failed": report.failed,
        "seconds": round(report.seconds, 2), "end_to_end_tiles_per_s": round(e2e, 1),
        "ceiling_tiles_per_s": round(ceiling, 1),
        "ceilings_before_after": [round(c, 1) for c in ceilings],
        "ratio_to_ceiling": round(e2e / ceiling, 3), "target_ratio": 0.9, "store": size,
        "pipeline_without_model_tiles_per_s": round(reading, 1),
        "pipeline_without_model_2_readers_tiles_per_s": round(reading_2, 1),
        "prototype_pipeline_tiles_per_s": round(proto, 2),
        "prototype_baseline_tiles": baseline_tiles,
        "speedup_vs_prototype": round(e2e / proto, 1) if proto else None,
        "prototype_plain_recipe_tiles_per_s": round(proto_plain, 2),
        "speedup_vs_prototype_plain": round(e2e / proto_plain, 1) if proto_plain else None,
        "prototype_resnet18_tiles_per_s": round(proto_r18, 2),
        "speedup_vs_prototype_resnet18": round(e2e / proto_r18, 1) if proto_r18 else None,
        "target_speedup_vs_prototype": 5.0,
        "load_average": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--model", default=None)
    ap.add_argument("--runtime", default="auto")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--baseline-tiles", type=int, default=200,
                    help="tiles the prototype pipeline baselines fingerprint (0: skip them)")
    args = ap.parse_args(argv)
    if not args.data.exists():
        print(f"skipped: {args.data} not found (the real orthomosaics live in ../shared/data)")
        return 0
    res = run(args.data, args.model, args.runtime, args.batch, args.baseline_tiles)
    print(f"model {res['model']} on {res['runtime']}, batch {res['batch']}, "
          f"{res['images']} images, {res['tiles']} tiles in {res['seconds']} s")
    print(f"  end to end      {res['end_to_end_tiles_per_s']:8.1f} tiles/s")
    print(f"  model ceiling   {res['ceiling_tiles_per_s']:8.1f} tiles/s "
          f"(before/after: {res['ceilings_before_after']})")
    print(f"  ratio           {res['ratio_to_ceiling']:8.3f}   (target >= 0.90)")
    if res["speedup_vs_prototype"]:
        print(f"  prototype       {res['prototype_pipeline_tiles_per_s']:8.2f} tiles/s "
              "(torch eager, batch 1, tiles via .npy)")
        print(f"  speed-up        {res['speedup_vs_prototype']:8.1f}x  (target >= 5x)")
        print(f"  prototype plain {res['prototype_plain_recipe_tiles_per_s']:8.2f} tiles/s "
              f"(its own recipe: plain 256 px); speed-up "
              f"{res['speedup_vs_prototype_plain']:.1f}x")
        print(f"  prototype R18   {res['prototype_resnet18_tiles_per_s']:8.2f} tiles/s "
              f"(its own model, ResNet-18 plain 256 px); speed-up "
              f"{res['speedup_vs_prototype_resnet18']:.1f}x")
    print(f"  pipeline alone  {res['pipeline_without_model_tiles_per_s']:8.1f} tiles/s "
          "(read, tile, store; a model that costs nothing)")
    print(f"  ... 2 readers   {res['pipeline_without_model_2_readers_tiles_per_s']:8.1f} tiles/s")
    s = res["store"]
    print(f"  store           {s['bytes_per_tile'] or 0:8.0f} bytes/tile, "
          f"{s['ratio_vs_float32'] or 0:.1f}x against float32 pixels")
    save(res, "index.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
