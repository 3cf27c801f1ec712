"""The shipping fingerprint recipes side by side: retrieval quality on UC Merced and indexing
speed, measured in the same run (speed rounds interleaved so machine load weighs on both).

    python -m benchmarks.studies.recipes [--data ../shared/data/ucmerced] [--rounds 3]

Quality: every image queries all others (relevant = same class), cosine distance, without and
with alpha query expansion (10 neighbours), through `tilesearch.evaluate` as `tilesearch
evaluate` runs it. Speed: model-only tiles/s on OpenVINO (batch 64, 256 px tiles), median over
rounds; the issue's rule is that a new default must index at least half as fast as before.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from benchmarks.common.data import UCMERCED
from benchmarks.common.measure import model_ceiling
from benchmarks.common.results import save
from tilesearch import quality as ev
from tilesearch.models import load_model
from tilesearch.models.recipes import RECIPES

DEFAULT_DATA = UCMERCED


MULTILEVEL = "efficientnet-lite0-multilevel"
"""Also timed and scored: the multi-level fingerprint (head + 3 stage pools) with rot4-128."""


def run(data: Path, rounds: int, runtime: str) -> dict[str, Any]:
    paths, labels = ev.labelled_images(data)
    tiles = ev.read_resized(paths, 256)
    models = {r: load_model(recipe=r, runtime=runtime) for r in RECIPES}
    models["rot4-128 multilevel"] = load_model(MULTILEVEL, recipe="rot4-128", runtime=runtime)
    speed: dict[str, list[float]] = {r: [] for r in models}
    for _ in range(rounds):
        for r, fp in models.items():
            speed[r].append(model_ceiling(fp, repeats=3))
    rows = []
    base = statistics.median(speed["plain"])
    for r, fp in models.items():
        vectors = ev.embed_all(fp, tiles)
        row: dict[str, Any] = {"recipe": r, "tiles_per_s": round(statistics.median(speed[r]), 1)}
        row["speed_vs_plain"] = round(row["tiles_per_s"] / base, 3)
        for qe in (0, 10):
            dist = ev.expanded_distances(vectors, "cosine", qe)
            scores = ev.retrieval_metrics(dist, labels, "cosine").overall
            row[f"qe{qe}"] = scores
        rows.append(row)
        print(f"{r:20s} {row['tiles_per_s']:7.1f} tiles/s ({row['speed_vs_plain']:.2f}x plain)  "
              f"mAP {row['qe0']['mAP']:.4f} P@10 {row['qe0']['P@10']:.4f}  |  with QE10: "
              f"mAP {row['qe10']['mAP']:.4f} P@10 {row['qe10']['P@10']:.4f}", flush=True)
    return {"runtime": runtime, "rounds": rounds, "images": len(paths), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runtime", default="openvino")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"skipped: {args.data} not found (UC Merced lives in ../shared/data)")
        return 0
    res = run(args.data, args.rounds, args.runtime)
    save(res, "recipes.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
