"""Indexing throughput end to end (read, tile, fingerprint, store) against the model-only
ceiling of the same runtime, measured in the same run.

    python benchmarks/bench_index.py [--data ../shared/data/orthos] [--runtime auto]

The ceiling is measured before and after the end-to-end run (the median of both is used), so
a machine that gets busier or quieter mid-run does not skew the ratio. Target: end to end at
least 80 % of the ceiling. Also reports the store's bytes per tile and compression ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np
from bench_models import model_ceiling
from bench_store import measure
from results_io import save

from tilesearch.api import load_fingerprinter
from tilesearch.indexer import index_images
from tilesearch.models.base import ModelIdentity
from tilesearch.store import Store

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "orthos"


class NullModel:
    """Returns zeros at once: indexing with it measures reading, tiling and storing alone."""

    def __init__(self, identity: ModelIdentity) -> None:
        self.identity = identity
        self.runtime = "none"

    def embed(self, tiles: np.ndarray) -> np.ndarray:
        return np.zeros((len(tiles), self.identity.dim), np.float32)


def read_ceiling(data: Path, identity: ModelIdentity, batch: int) -> float:
    """Tiles/s of the pipeline with a model that costs nothing."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.create(Path(tmp) / "null.tiles", identity)
        report = index_images([data], store, NullModel(identity), batch_size=batch)
        store.close()
    return report.tiles_per_second


def run(data: Path, model: str | None, runtime: str, batch: int) -> dict[str, Any]:
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
    e2e = report.tiles_per_second
    return {
        "model": fp.identity.name, "runtime": fp.runtime, "batch": batch, "data": str(data),
        "model_load_s": round(load_s, 2), "tiles": report.tiles_added,
        "images": len(report.indexed), "failed": report.failed,
        "seconds": round(report.seconds, 2), "end_to_end_tiles_per_s": round(e2e, 1),
        "ceiling_tiles_per_s": round(ceiling, 1),
        "ceilings_before_after": [round(c, 1) for c in ceilings],
        "ratio_to_ceiling": round(e2e / ceiling, 3), "target_ratio": 0.8, "store": size,
        "pipeline_without_model_tiles_per_s": round(reading, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--model", default=None)
    ap.add_argument("--runtime", default="auto")
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args(argv)
    if not args.data.exists():
        print(f"skipped: {args.data} not found (the real orthomosaics live in ../shared/data)")
        return 0
    res = run(args.data, args.model, args.runtime, args.batch)
    print(f"model {res['model']} on {res['runtime']}, batch {res['batch']}, "
          f"{res['images']} images, {res['tiles']} tiles in {res['seconds']} s")
    print(f"  end to end      {res['end_to_end_tiles_per_s']:8.1f} tiles/s")
    print(f"  model ceiling   {res['ceiling_tiles_per_s']:8.1f} tiles/s "
          f"(before/after: {res['ceilings_before_after']})")
    print(f"  ratio           {res['ratio_to_ceiling']:8.3f}   (target >= 0.80)")
    print(f"  pipeline alone  {res['pipeline_without_model_tiles_per_s']:8.1f} tiles/s "
          "(read, tile, store; a model that costs nothing)")
    s = res["store"]
    print(f"  store           {s['bytes_per_tile'] or 0:8.0f} bytes/tile, "
          f"{s['ratio_vs_float32'] or 0:.1f}x against float32 pixels")
    save(res, "index.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
