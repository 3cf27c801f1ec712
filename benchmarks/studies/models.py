"""Model-only throughput: tiles/s for every model x installed runtime.

    python -m benchmarks.studies.models [--batch 64] [--repeats 5] [--threads N]

Prints a table and writes ``benchmarks/results/models.json``. Tiles are random uint8, which is
fine: the cost of these networks does not depend on pixel values. Without ImageNet ResNet-18
weights, ResNet-18 is timed with random weights of the same shapes (noted in the JSON).
The indexing benchmark uses the same ceiling (``benchmarks.common.measure.model_ceiling``).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common.measure import model_ceiling
from benchmarks.common.results import RESULTS_DIR, save
from benchmarks.common.synthetic import random_resnet18_weights
from tilesearch import ModelError
from tilesearch.models import available_models, available_runtimes, load_model

RESULTS = RESULTS_DIR / "models.json"


def _weights(name: str, scratch: Path) -> tuple[Path | None, str]:
    """The weights to time `name` with: its ImageNet ones, else random ones (ResNet-18 only)."""
    try:
        load_model(name, runtime="torch", threads=1)
        return None, "imagenet"
    except ModelError:
        if name != "resnet18":
            raise
    return random_resnet18_weights(scratch), "random"


def run(batch: int, repeats: int, threads: int | None) -> list[dict[str, Any]]:
    """Time every model on every installed runtime; one row per pair."""
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in available_models():
            path, weights = _weights(name, Path(scratch))
            for runtime in available_runtimes():
                start = time.perf_counter()
                model = load_model(name, weights=path, runtime=runtime, threads=threads)
                load_s = time.perf_counter() - start
                rate = model_ceiling(model, batch=batch, repeats=repeats)
                rows.append(
                    {
                        "model": name,
                        "runtime": runtime,
                        "tiles_per_s": round(rate, 2),
                        "load_s": round(load_s, 2),
                        "weights": weights,
                    }
                )
                print(f"{name:20s} {runtime:12s} {rate:8.1f} tiles/s  (load {load_s:.1f} s)")
    return rows


def sweep(batches: list[int], threads: list[int], repeats: int) -> list[dict[str, Any]]:
    """Tiles/s of the default model on the auto runtime per (threads, batch): the batch size
    and thread count the indexer uses are chosen from this table."""
    rows = []
    for n in threads:
        model = load_model(threads=n)
        for batch in batches:
            rate = model_ceiling(model, batch=batch, repeats=repeats)
            rows.append({"runtime": model.runtime, "threads": n, "batch": batch,
                         "tiles_per_s": round(rate, 2)})
            print(f"{model.runtime:10s} threads {n}  batch {batch:4d} {rate:8.1f} tiles/s")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--sweep", action="store_true",
                        help="time the default model over batch sizes 8-128 and 1-2 threads")
    args = parser.parse_args(argv)
    if args.sweep:
        rows = sweep([8, 16, 32, 64, 128], [1, len(os.sched_getaffinity(0))], args.repeats)
        save({"load_average": os.getloadavg(), "results": rows}, RESULTS.parent / "sweep.json")
        return
    rows = run(args.batch, args.repeats, args.threads)
    report = {
        "batch": args.batch,
        "tile_size": 256,
        "repeats": args.repeats,
        "threads": args.threads or len(os.sched_getaffinity(0)),
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
        "load_average": os.getloadavg(),
        "results": rows,
    }
    save(report, args.out)


if __name__ == "__main__":
    main()
