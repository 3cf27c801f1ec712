"""Would float16 fingerprints cost ranking quality or speed? Measured, not assumed.

    python -m benchmarks.studies.fp16 STORE [--queries 200] [--n 180000]

Quality: recall@10 of neighbours computed on float16-rounded fingerprints of STORE (a real
store) against float32, over random stored tiles as queries. Speed: one exact scan over
n x 512 synthetic float32 fingerprints with numpy float32 (the store's scan), numpy float16 cast
chunk by chunk, and faiss's fp16 scalar quantizer (when faiss is installed), with the cost of
loading float16 codes into faiss.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.results import save
from tilesearch.store import Store


def recall_fp16(vectors: np.ndarray, queries: int, seed: int = 0, k: int = 10) -> float:
    x = np.asarray(vectors, dtype=np.float32)
    x16 = x.astype(np.float16).astype(np.float32)
    rng = np.random.default_rng(seed)
    hits = []
    for i in rng.choice(len(x), size=min(queries, len(x)), replace=False):
        a = np.argsort(((x - x[i]) ** 2).sum(1))[: k + 1]
        b = np.argsort(((x16 - x16[i]) ** 2).sum(1))[: k + 1]
        hits.append(len(set(a) & set(b)) / (k + 1))
    return float(np.mean(hits))


def median_ms(fn: Callable[[], Any], repeats: int = 15) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def scan_speeds(n: int, dim: int = 512) -> dict[str, float]:
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, 0.5, (n, dim)).astype(np.float32)
    x16 = x.astype(np.float16)
    norms = (x * x).sum(1)
    q = x[5]

    def f32() -> np.ndarray:
        return np.argpartition(norms - 2 * (x @ q), 10)[:10]

    def f16_cast() -> np.ndarray:
        dots = np.empty(n, np.float32)
        for s in range(0, n, 16384):
            dots[s:s + 16384] = x16[s:s + 16384].astype(np.float32) @ q
        return np.argpartition(norms - 2 * dots, 10)[:10]

    out = {"numpy_float32_ms": median_ms(f32), "numpy_float16_cast_ms": median_ms(f16_cast)}
    try:
        import faiss
    except ImportError:
        return out
    faiss.omp_set_num_threads(1)
    index = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_L2)
    index.is_trained = True
    t = time.perf_counter()
    faiss.copy_array_to_vector(x16.view(np.uint8).ravel(), index.codes)
    index.ntotal = n
    out["faiss_load_codes_ms"] = (time.perf_counter() - t) * 1000
    out["faiss_fp16_scan_ms"] = median_ms(lambda: index.search(q[None], 10))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", type=Path)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--n", type=int, default=180000)
    args = ap.parse_args(argv)
    with Store.open(args.store) as store:
        recall = recall_fp16(store.vectors(), args.queries)
        res: dict[str, Any] = {"store": str(args.store), "tiles": store.count,
                               "recall_at_10_fp16": round(recall, 4)}
    res |= {k: round(v, 1) for k, v in scan_speeds(args.n).items()}
    for key, value in res.items():
        print(f"{key:<24}{value}")
    save(res, "fp16.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
