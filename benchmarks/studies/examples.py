"""Several examples per query: which way of combining them ranks best on UC Merced?

    python -m benchmarks.studies.examples [--data ../shared/data/ucmerced] [--trials 20]

For every class, `trials` times: 3 positives drawn from the class and 3 negatives from the
other classes; every other image is ranked (examples left out) and relevant means the
positives' class. Formulas compared (cosine, L2-normalised fingerprints, default model):

- single: the first positive alone (the baseline of one example);
- mean: the mean of the positives;
- rocchio: mean(P) - 0.5 * mean(N), what `tilesearch search -p ... -n ...` ships;
- nearest-positive: a tile's score is its distance to the closest positive (max-similarity
  fusion), negatives unused.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.data import UCMERCED
from benchmarks.common.results import save
from tilesearch import load_fingerprinter
from tilesearch import quality as ev
from tilesearch.retrieval import combine_examples

DEFAULT_DATA = UCMERCED


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> float:
    order = np.argsort(scores, kind="stable")
    rel = relevant[order]
    hits = np.cumsum(rel)
    return float((rel * hits / np.arange(1, len(rel) + 1)).sum() / max(rel.sum(), 1))


def run(x: np.ndarray, labels: np.ndarray, trials: int, seed: int = 0) -> dict[str, float]:
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    aps: dict[str, list[float]] = {"single": [], "mean": [], "rocchio": [],
                                   "nearest-positive": []}
    for cls in np.unique(labels):
        inside, outside = np.flatnonzero(labels == cls), np.flatnonzero(labels != cls)
        for _ in range(trials):
            pos = rng.choice(inside, 3, replace=False)
            neg = rng.choice(outside, 3, replace=False)
            keep = np.setdiff1d(np.arange(len(x)), np.concatenate([pos, neg]))
            rel = labels[keep] == cls
            queries = {"single": unit[pos[0]], "mean": combine_examples(unit[pos]),
                       "rocchio": combine_examples(unit[pos], unit[neg])}
            for name, q in queries.items():
                aps[name].append(average_precision(-(unit[keep] @ q), rel))
            best = (unit[keep] @ unit[pos].T).max(1)
            aps["nearest-positive"].append(average_precision(-best, rel))
    return {name: round(float(np.mean(v)), 4) for name, v in aps.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--trials", type=int, default=20)
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"skipped: {args.data} not found")
        return 0
    paths, labels = ev.labelled_images(args.data)
    fp = load_fingerprinter()
    x = ev.embed_all(fp, ev.read_resized(paths, 256))
    res: dict[str, Any] = {"recipe": fp.identity.recipe, "trials_per_class": args.trials,
                           "mAP": run(x, np.asarray(labels), args.trials)}
    for name, value in res["mAP"].items():
        print(f"{name:<18} mAP {value:.4f}")
    save(res, "examples.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
