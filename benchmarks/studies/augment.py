"""Database-side augmentation (build-index --augment K): what it gives and what it costs.

    python -m benchmarks.studies.augment

- UC Merced (fingerprints of the default model, cached by benchmarks.targets.codecs): mAP and P@k of
  the plain fingerprints and of augmentation over k = 5, 10, 20, for queries that are stored
  items (as `tilesearch evaluate --augment k` measures), and for outside queries (an image's
  raw fingerprint against the others' augmented ones), as they are and after the alpha query
  expansion that image searches on an augmented store apply.
- Label-free, on a copy of the orthomosaics' store (benchmarks.targets.ann caches it): how often a
  transformed copy of a tile finds its source at rank 1 and in the top 10, without
  augmentation, with it (copies expanded, as image searches are), and with it but the copies
  left raw; plus the time `build-index --augment 10` took.
- `--store PATH`: also times `build-index --augment 10` on a copy of that store (for
  example the 180,000-tile store benchmarks.targets.serve caches), search index included.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.data import REAL_STORE, real_fingerprints, ucm_fingerprints
from benchmarks.common.results import RESULTS_DIR, save
from tilesearch import api, quality
from tilesearch import retrieval as knn
from tilesearch.ann.augment import augment_set, combine
from tilesearch.store import Store, unit

K = 10


def scores(sim: np.ndarray, labels: list[str]) -> dict[str, float]:
    return quality.retrieval_metrics(1.0 - sim, labels).overall


def ucm(rows: dict[str, Any]) -> None:
    x, labels = ucm_fingerprints()
    u = unit(x)
    rows["ucm plain"] = scores(u @ u.T, labels)
    for k in (5, 10, 20):
        a = augment_set(x, k)
        rows[f"ucm augment {k}"] = scores(a @ a.T, labels)
        rows[f"ucm augment {k} + query expansion {k}"] = scores(
            1 - quality.expanded_distances(a, "cosine", k), labels)
        raw = u @ a.T  # outside queries: raw fingerprint against the augmented others
        rows[f"ucm augment {k}, outside query raw"] = scores(raw, labels)
        s = raw.copy()
        np.fill_diagonal(s, -np.inf)  # the query's own augmented copy is not in the store
        top = np.argsort(-s, axis=1)[:, :k]
        e = combine(u, a[top], np.take_along_axis(s, top, 1))
        rows[f"ucm augment {k}, outside query expanded"] = scores(e @ a.T, labels)


def label_free(rows: dict[str, Any]) -> None:
    real_fingerprints()  # indexes the orthos into REAL_STORE once
    with tempfile.TemporaryDirectory(prefix="bench-augment-", dir=RESULTS_DIR) as tmp:
        path = Path(tmp) / "orthos.tiles"
        shutil.copytree(REAL_STORE, path)
        with Store.open(path) as s:
            model = api.store_fingerprinter(s)
            rows["orthos plain"] = quality.transform_check(s, model).to_dict()
        t = time.perf_counter()
        api.build_index(path, augment=K)
        rows["orthos augment seconds"] = time.perf_counter() - t
        with Store.open(path) as s:
            rows["orthos tiles"] = s.count
            rows[f"orthos augment {K}"] = quality.transform_check(s, model).to_dict()
            expand = knn.expand_query
            knn.expand_query = lambda store, v, k, alpha=3.0: v  # type: ignore[assignment]
            try:
                rows[f"orthos augment {K}, copies raw"] = quality.transform_check(
                    s, model).to_dict()
            finally:
                knn.expand_query = expand


def time_store(store: Path, rows: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-augment-", dir=RESULTS_DIR) as tmp:
        path = Path(tmp) / store.name
        shutil.copytree(store, path)
        t = time.perf_counter()
        report = api.build_index(path, augment=K)
        seconds = time.perf_counter() - t
        with Store.open(path) as s:
            rows["store"] = {"tiles": s.count, "dim": s.dim, "index": report.factory,
                             "seconds": seconds}
    r = rows["store"]
    print(f"build-index --augment {K} on {r['tiles']:,} tiles ({r['dim']}-d, index "
          f"{r['index']}): {seconds:.1f} s")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, help="also time augmenting a copy of this store")
    a = ap.parse_args(argv)
    rows: dict[str, Any] = {}
    ucm(rows)
    for name, r in rows.items():
        print(f"{name:<45} mAP {r['mAP']:.3f}  P@1 {r['P@1']:.3f}  P@10 {r['P@10']:.3f}")
    label_free(rows)
    for name in ("orthos plain", f"orthos augment {K}", f"orthos augment {K}, copies raw"):
        r = rows[name]
        print(f"{name}: rank 1 " + ", ".join(f"{t} {v:.2f}" for t, v in r["rank1"].items()))
        print(" " * len(name) + "  top 10 " + ", ".join(f"{t} {v:.2f}"
                                                      for t, v in r["top10"].items()))
    print(f"build-index --augment {K} on {rows['orthos tiles']:,} tiles: "
          f"{rows['orthos augment seconds']:.1f} s")
    if a.store:
        time_store(a.store, rows)
    save(rows, RESULTS_DIR / "augment.json")


if __name__ == "__main__":
    main()
