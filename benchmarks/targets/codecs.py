"""Compact fingerprints: bytes per tile, compression, and ranking quality of each codec.

    python -m benchmarks.targets.codecs [--codecs "SQfp16" "PCA128,SQ8" ...]

For each FAISS codec (trained on the fingerprints it encodes, no labels, as ``build-index``
trains it: a PCA is fitted about the origin; one row repeats the default codec with FAISS's
own centred PCA, which a following ``L2norm`` gets wrong):
- bytes per tile of the codes, and the compression against the float32 pixels of the indexed
  images: per tile, the orthos' float32 pixels divided by the number of tiles (the measure of
  `tilesearch info`), and per 128 px stride cell (196,608 bytes: what each tile adds at 4x
  overlap; the prototype's 175x was the same measure at 2x overlap);
- recall@10 against exact full-precision cosine search, tie-aware, on the real orthomosaic
  fingerprints (every tile queries all the others), from the codes alone and through the
  FAISS index itself (the query exact, the stored tiles as codes: what a ``--drop-full`` store
  answers), and after exact re-ranking of 256 candidates (what a store with full vectors kept
  does); through the index on UC Merced too (every image queries the others);
- mAP and P@10 on UC Merced (2,100 images, class labels as relevance) from the codes alone,
  beside the exact figure: how much of the retrieval quality the codes keep.

Fingerprints: the default model and recipe. The orthos store is cached in
benchmarks/results/orthos.tiles (benchmarks.targets.ann makes it), UC Merced embeddings in
benchmarks/results/ucm-fingerprints.npz.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from benchmarks.common.data import REAL_STORE, real_fingerprints, ucm_fingerprints
from benchmarks.common.results import RESULTS_DIR, save
from benchmarks.common.synthetic import unit
from tilesearch import ann, quality
from tilesearch.store import Store

CENTRED = " (FAISS's centred PCA)"
"""A codec name ending in this is trained by FAISS alone, its PCA fitted on centred data."""
CODECS = ["SQfp16", "SQ8", "PCA384,SQ8", "PCA256,SQ8", "PCA256,L2norm,SQ8",
          "PCA256,L2norm,SQ8" + CENTRED, "PCA256,L2norm,SQ6", "PCA192,L2norm,SQ8",
          "PCA320,L2norm,SQ4", "PCA240,L2norm,SQ6", "PCA192,L2norm,SQ6", "PCA128,L2norm,SQ8",
          "PCA256,PQ64"]
STRIDE_CELL = 128 * 128 * 3 * 4


def encode(codec: str, x: np.ndarray) -> tuple[np.ndarray, Any, float]:
    """Decoded unit vectors of `x` through `codec`, the FAISS index holding their codes (as
    `build-index` makes it: unit vectors, L2), and the training seconds."""
    import faiss

    xn = unit(x).astype(np.float32)
    factory = codec.removesuffix(CENTRED)
    index = faiss.index_factory(x.shape[1], factory, faiss.METRIC_L2)
    t0 = time.perf_counter()
    if factory != codec:
        index.train(xn)
    else:
        ann.train(index, xn)  # as build-index trains it (a PCA fitted about the origin)
    secs = time.perf_counter() - t0
    index.add(xn)
    return index.sa_decode(index.sa_encode(xn)), index, secs


def _true_scores(exact: np.ndarray) -> np.ndarray:
    """Exact cosine of every tile to every other; a tile's own score is -inf (not its hit)."""
    s_true = exact @ exact.T
    np.fill_diagonal(s_true, -np.inf)
    return s_true


def index_recall(exact: np.ndarray, index: Any, k: int = 10) -> float:
    """Tie-aware recall@k of `index.search` (codes alone, as a --drop-full store searches),
    every tile querying the others."""
    s_true = _true_scores(exact)
    kth = np.sort(s_true, axis=1)[:, -k]
    _, found = index.search(exact.astype(np.float32), k + 1)
    ids = np.array([[j for j in row if j != i][:k] for i, row in enumerate(found)])
    got = np.take_along_axis(s_true, np.maximum(ids, 0), 1)
    return float(((got >= kth[:, None] - 1e-6) & (ids >= 0)).mean())


def recall(exact: np.ndarray, approx: np.ndarray, rerank: int = 0, k: int = 10) -> float:
    """Tie-aware recall@k of ranking by `approx` against `exact` (unit vectors), every tile
    querying the others."""
    s_true = _true_scores(exact)
    s_apx = exact @ approx.T
    np.fill_diagonal(s_apx, -np.inf)
    kth = np.sort(s_true, axis=1)[:, -k]
    depth = max(rerank, k)
    cand = np.argsort(-s_apx, axis=1)[:, :depth]
    if rerank:
        order = np.argsort(-np.take_along_axis(s_true, cand, 1), axis=1)
        cand = np.take_along_axis(cand, order, 1)
    got = np.take_along_axis(s_true, cand[:, :k], 1)
    return float((got >= kth[:, None] - 1e-6).mean())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--codecs", nargs="+", default=CODECS)
    a = ap.parse_args(argv)
    ortho = real_fingerprints()
    with Store.open(REAL_STORE) as s:
        pixel_bytes = sum(i["info"].width * i["info"].height for i in s.images()) * 12
    per_tile_pixels = pixel_bytes / len(ortho)
    ucm, labels = ucm_fingerprints()
    exact_ucm = quality.retrieval_metrics(quality.pairwise_distances(ucm), labels).overall
    rows: list[dict[str, Any]] = [{"codec": "float32 (exact)", "bytes": ortho.shape[1] * 4,
                                   "recall@10": 1.0, "recall@10_index": 1.0,
                                   "recall@10_rerank256": 1.0, "ucm_recall@10_index": 1.0,
                                   "ucm_mAP": exact_ucm["mAP"], "ucm_P@10": exact_ucm["P@10"]}]
    ex, ex_ucm = unit(ortho), unit(ucm)
    ev = np.linalg.eigvalsh(np.cov(ex.T))[::-1]
    kept = {d: float(ev[:d].sum() / ev.sum()) for d in (64, 128, 192, 256, 384, 512)}
    print("variance kept by the first d principal components (orthos): "
          + ", ".join(f"{d}: {v:.1%}" for d, v in kept.items()))
    for codec in a.codecs:
        dec, index, secs = encode(codec, ortho)
        dec_ucm, index_ucm, _ = encode(codec, ucm)
        m = quality.retrieval_metrics(quality.pairwise_distances(dec_ucm), labels).overall
        rows.append({"codec": codec, "bytes": int(index.sa_code_size()), "train_s": secs,
                     "recall@10": recall(ex, dec),
                     "recall@10_index": index_recall(ex, index),
                     "recall@10_rerank256": recall(ex, dec, rerank=256),
                     "ucm_recall@10_index": index_recall(ex_ucm, index_ucm),
                     "ucm_mAP": m["mAP"], "ucm_P@10": m["P@10"]})
    print(f"{'codec':<16} {'bytes':>6} {'x pixels':>9} {'x cell':>7} {'recall@10':>9} "
          f"{'index':>6} {'+rerank':>8} {'UCM index':>9} {'UCM mAP':>8} {'UCM P@10':>8}")
    for r in rows:
        r["ratio_vs_pixels"] = per_tile_pixels / r["bytes"]
        r["ratio_vs_stride_cell"] = STRIDE_CELL / r["bytes"]
        print(f"{r['codec']:<16} {r['bytes']:>6} {r['ratio_vs_pixels']:>9.0f} "
              f"{r['ratio_vs_stride_cell']:>7.0f} {r['recall@10']:>9.3f} "
              f"{r['recall@10_index']:>6.3f} "
              f"{r['recall@10_rerank256']:>8.3f} {r['ucm_recall@10_index']:>9.3f} "
              f"{r['ucm_mAP']:>8.3f} {r['ucm_P@10']:>8.3f}")
    save({"ortho_tiles": len(ortho), "ucm_images": len(ucm), "pca_variance_kept": kept,
          "float32_pixel_bytes_per_tile": per_tile_pixels, "codecs": rows},
         RESULTS_DIR / "codecs.json")


if __name__ == "__main__":
    main()
