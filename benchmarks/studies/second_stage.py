"""Which finer codes could rank a refining codec's candidates from RAM instead of from disk?

    python -m benchmarks.studies.second_stage --n 10000000

A refining codec (``PCA256,L2norm,SQ8,Refine(SQ8)``) ranks its first stage's candidates by
finer codes that, at 10 M tiles, take 19 GB: they stay on disk and each candidate costs a read
(benchmarks.targets.ann; about half a millisecond a candidate from a cold disk here). To
answer from RAM
within 8 GB, the finer codes would have to fit beside the 2.6 GB first stage: about 500 bytes
a tile. This measures, for candidate finer codecs, recall@10 against exact search when they
rank the first stage's best C candidates (C = 16 ... 128), at N crowded synthetic tiles
(benchmarks.targets.ann's `Synth`, same seeds).

Emulation, to run in minutes rather than build a store per codec: for Q queries the exact
top 1,024 of the N tiles are found (a chunked exact scan, cached under benchmarks/results/);
the first stage (trained as benchmarks.targets.ann trains it) orders these 1,024, and each
finer codec
orders the first stage's best C of them. Candidates the inverted lists would miss are not
modelled, so the figures are upper bounds of what a store with that codec would reach.

PQ codecs are trained one sub-quantizer at a time with ``faiss.Kmeans``: FAISS's own
``ProductQuantizer.train`` had not finished a 476-sub-quantizer code after 10 minutes here.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from benchmarks.common.data import real_fingerprints
from benchmarks.common.results import RESULTS_DIR, save
from benchmarks.common.synthetic import Synth, exact_top, unit
from tilesearch import ann

FIRST = "PCA256,L2norm,SQ8"
CODECS = ("SQ8", "PCA1024,SQ8", "PCA512,SQfp16", "PCA768,SQ8", "PCA512,SQ8", "PCA384,SQ8",
          "PCA512,SQ6", "PQ476", "PQ238")
CANDIDATES = (16, 32, 64, 128)
Q, R, K = 200, 1024, 10


def exact_ids(synth: Synth, draws: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Ids of the exact top `R` of each query among the tiles `draws` make, best first
    (benchmarks.targets.ann's chunked scan; cached)."""
    cache = RESULTS_DIR / f"second-stage-top-{len(draws)}.npy"
    if cache.exists():
        return np.load(cache)
    top_i = exact_top(synth, draws, q, R)[1]
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, top_i)
    return top_i


def train_pq(index: Any, x: np.ndarray, faiss: Any) -> None:
    """Train an ``IndexPQ`` sub-quantizer by sub-quantizer (see the module docstring)."""
    pq = index.pq
    cents = np.empty((pq.M, pq.ksub, pq.dsub), np.float32)
    for m in range(pq.M):
        km = faiss.Kmeans(pq.dsub, pq.ksub, niter=20, seed=1234 + m)
        km.train(np.ascontiguousarray(x[:, m * pq.dsub:(m + 1) * pq.dsub]))
        cents[m] = km.centroids
    faiss.copy_array_to_vector(cents.ravel(), pq.centroids)
    index.is_trained = True


def decoded(name: str, train: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, int]:
    """`x` as codec `name` (trained on `train`) keeps it, and its bytes a tile."""
    import faiss

    index = faiss.index_factory(x.shape[1], name, faiss.METRIC_L2)
    if name.startswith("PQ"):
        train_pq(index, train, faiss)
    elif name == FIRST:
        ann.train(index, train)  # the PCA about the origin, as the index builds it
    else:
        index.train(train)  # as ann.building.Writer trains a refining stage
    return index.sa_decode(index.sa_encode(x)), int(index.sa_code_size())


def recall(q: np.ndarray, dec: np.ndarray, order: np.ndarray, rank: np.ndarray,
           c: int) -> float:
    """recall@K when `dec` ranks each query's first-stage best `c` (rows of `order`: rows of
    `dec`); ``rank[i, j]`` is row j's exact rank for query i (`R` beyond the top `R`)."""
    hits = 0
    for i in range(len(q)):
        cand = order[i, :c]
        best = cand[np.argsort(((dec[cand] - q[i]) ** 2).sum(1), kind="stable")[:K]]
        hits += int((rank[i][best] < K).sum())
    return hits / (K * len(q))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000, help="synthetic tiles (default 1 M)")
    p.add_argument("--codecs", default=";".join(CODECS), help="';'-separated FAISS codecs")
    a = p.parse_args(argv)
    import faiss

    faiss.omp_set_num_threads(2)
    synth = Synth(real_fingerprints())
    q = unit(synth.vectors(synth.draws(Q, np.random.default_rng(99)))).astype(np.float32)
    draws = synth.draws(a.n, np.random.default_rng(1))  # benchmarks.targets.ann's store, same seed
    top = exact_ids(synth, draws, q)
    uniq, inv = np.unique(top.ravel(), return_inverse=True)
    inv = inv.reshape(top.shape)
    cand = unit(synth.vectors(draws[uniq])).astype(np.float32)
    del draws
    rank = np.full((Q, len(uniq)), R, np.int32)  # exact rank of every candidate, per query
    for i in range(Q):
        rank[i, inv[i]] = np.arange(R)
    train = unit(synth.vectors(synth.draws(ann.spec.TRAIN_MAX, np.random.default_rng(7))))
    first, first_bytes = decoded(FIRST, train, cand)
    order = np.stack([inv[i][np.argsort(((first[inv[i]] - q[i]) ** 2).sum(1), kind="stable")]
                      for i in range(Q)])
    rows: dict[str, Any] = {"first stage": FIRST, "first_stage_bytes": first_bytes, "n": a.n}
    print(f"{a.n:,} tiles, first stage {FIRST} ({first_bytes} B); recall@10 when the finer "
          f"codes rank the first stage's best C")
    print(f"{'finer codec':16s} {'bytes':>5s} {'GB at n':>7s}  "
          + "  ".join(f"C={c:<4d}" for c in CANDIDATES))
    for name in a.codecs.split(";"):
        t = time.perf_counter()
        dec, size = decoded(name, train, cand)
        r = {c: recall(q, dec, order, rank, c) for c in CANDIDATES}
        rows[name] = {"bytes": size, "recall_at_10": r, "seconds": time.perf_counter() - t}
        print(f"{name:16s} {size:5d} {size * a.n / 1e9:7.2f}  "
              + "  ".join(f"{r[c]:.4f}" for c in CANDIDATES), flush=True)
    save(rows, f"second_stage_{a.n}.json")


if __name__ == "__main__":
    main()
