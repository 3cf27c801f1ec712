"""Features and scoring for the retrieval-quality benchmarks: UC Merced tiles and probe
outputs cached on disk, colour histograms, L2 / signed-sqrt / concatenation / PCA, alpha query
expansion and database-side augmentation, k-reciprocal re-ranking, mAP / P@k rows."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.lite import (
    BATCH,
    HEAD,
    TILE,
    build_lite,
    dihedral,
    openvino_runner,
    probe_module,
)
from tilesearch.quality import labelled_images, read_resized, retrieval_metrics

POOLS = ("avg", "gem2", "gem3", "gem4", "max")


def load_tiles(data: Path, cache: Path) -> tuple[np.ndarray, list[str]]:
    paths, labels = labelled_images(data)
    file = cache / f"tiles-{TILE}-{len(paths)}.npy"
    if file.is_file():
        tiles = np.load(file, mmap_mode="r")
    else:
        tiles = read_resized(paths, TILE)
        np.save(file, tiles)
    return np.asarray(tiles), labels


def probe_features(name: str, tiles: np.ndarray, transforms: Sequence[int], cache: Path,
                   threads: int, size: int = TILE) -> dict[int, np.ndarray]:
    """Probe outputs per dihedral transform, from the cache or computed on OpenVINO."""
    out, run = {}, None
    for t in transforms:
        px = "" if size == TILE else f"-{size}px"
        file = cache / f"probe-{name}{px}-{len(tiles)}-t{t}.npy"
        if not file.is_file():
            if run is None:
                run = openvino_runner(probe_module(build_lite(name), size), threads)
            start = time.perf_counter()
            parts = [run(dihedral(tiles[i:i + BATCH], t)) for i in range(0, len(tiles), BATCH)]
            np.save(file, np.concatenate(parts))
            print(f"  extracted {name} t{t}: {len(tiles) / (time.perf_counter() - start):.1f}"
                  " tiles/s", flush=True)
        out[t] = np.load(file)
    return out


def split_probe(x: np.ndarray, tap_dims: Sequence[int]) -> dict[str, np.ndarray]:
    parts, i = {}, 0
    for pool in POOLS:
        parts[pool] = x[:, i:i + HEAD]
        i += HEAD
    for k, d in enumerate(tap_dims):
        parts[f"tap{k}"] = x[:, i:i + d]
        i += d
    return parts


def colour_histogram(tiles: np.ndarray, bins: int = 8) -> np.ndarray:
    q = (tiles >> (8 - int(np.log2(bins)))).astype(np.int32)
    code = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    flat = code.reshape(len(tiles), -1)
    hist = np.zeros((len(tiles), bins ** 3), np.float32)
    for i, row in enumerate(flat):
        hist[i] = np.bincount(row, minlength=bins ** 3)
    return hist / flat.shape[1]


def l2n(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def ssqrt(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.sqrt(np.abs(x))


def concat(parts: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    weights = weights or [1.0] * len(parts)
    return l2n(np.concatenate([w * l2n(p) for p, w in zip(parts, weights, strict=True)], 1))


def pca(x: np.ndarray, dim: int) -> np.ndarray:
    """Project centred L2-normalised vectors on their top `dim` components (no whitening)."""
    x = l2n(x)
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return l2n((x - mean) @ vt[:dim].T)


def pca_lookup(variant: str, multi: dict[str, np.ndarray]) -> np.ndarray:
    key, _, dim = variant.rpartition(" PCA")
    return pca(multi[key], int(dim))


def top_k(sim: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k most similar columns per row, excluding the row itself (same index)."""
    s = sim.copy()
    np.fill_diagonal(s, -np.inf)
    idx = np.argpartition(-s, k, axis=1)[:, :k]
    return idx


def expand(q: np.ndarray, db: np.ndarray, k: int, alpha: float, self_weight: float = 1.0
           ) -> np.ndarray:
    """alpha-QE: q + sum over its top-k database neighbours (itself excluded) of sim^alpha * x."""
    sim = q @ db.T
    idx = top_k(sim, k)
    w = np.clip(np.take_along_axis(sim, idx, 1), 0, None) ** alpha
    return l2n(self_weight * q + np.einsum("nk,nkd->nd", w, db[idx]))


def k_reciprocal(sim: np.ndarray, k1: int = 20, k2: int = 6, lam: float = 0.3) -> np.ndarray:
    """Zhong et al. 2017 re-ranking on an all-pairs cosine similarity (query set = gallery)."""
    n = len(sim)
    dist = 2 - 2 * sim
    dist = dist / dist.max(0, keepdims=True)  # as in the reference code
    rank = np.argsort(dist, axis=1)
    V = np.zeros((n, n), np.float32)
    kk = int(np.around(k1 / 2))
    for i in range(n):
        fwd = rank[i, :k1 + 1]
        back = rank[fwd, :k1 + 1]
        recip = fwd[np.where(back == i)[0]]
        exp = recip
        for c in recip:
            cf = rank[c, :kk + 1]
            cb = rank[cf, :kk + 1]
            crec = cf[np.where(cb == c)[0]]
            if len(np.intersect1d(crec, recip)) > 2 / 3 * len(crec):
                exp = np.append(exp, crec)
        exp = np.unique(exp)
        w = np.exp(-dist[i, exp])
        V[i, exp] = w / w.sum()
    if k2 != 1:
        V = np.mean(V[rank[:, :k2]], axis=1)
    inv = [np.where(V[:, i] != 0)[0] for i in range(n)]
    jac = np.zeros((n, n), np.float32)
    for i in range(n):
        tmp = np.zeros(n, np.float32)
        nz = np.where(V[i] != 0)[0]
        for j in nz:
            tmp[inv[j]] += np.minimum(V[i, j], V[inv[j], j])
        jac[i] = 1 - tmp / (2 - tmp)
    return jac * (1 - lam) + dist * lam


def score(q: np.ndarray, db: np.ndarray | None, labels: Sequence[str], metric: str
          ) -> dict[str, float]:
    """mAP/P@k with query i against database rows j != i."""
    db = q if db is None else db
    if metric == "cosine":
        qn, dn = l2n(q), l2n(db)
        d = 1.0 - qn @ dn.T
    else:
        q64, d64 = np.asarray(q, np.float64), np.asarray(db, np.float64)
        d = (q64 * q64).sum(1)[:, None] + (d64 * d64).sum(1)[None] - 2 * q64 @ d64.T
    return retrieval_metrics(d, labels, metric).overall


@dataclass
class Row:
    variant: str
    group: str
    metric: str
    scores: dict[str, float]
    dim: int
    cost: str = ""
    speed: float | None = None

    def to_dict(self, base: float | None) -> dict[str, Any]:
        return {"variant": self.variant, "group": self.group, "metric": self.metric,
                **self.scores, "bytes": self.dim * 4, "cost": self.cost,
                "tiles_per_s": self.speed and round(self.speed, 1),
                "relative_speed": self.speed and base and round(self.speed / base, 3)}


def print_table(rows: list[Row], base: float | None) -> None:
    head = (f"{'variant':<70} {'metric':<9} {'mAP':>6} {'P@10':>6} {'P@1':>6} {'bytes':>6} "
            f"{'tiles/s':>7} {'rel':>5}")
    print(head)
    print("-" * len(head))
    for r in rows:
        s = r.scores
        speed = f"{r.speed:7.1f}" if r.speed else f"{'':>7}"
        rel = f"{r.speed / base:5.2f}" if r.speed and base else f"{'':>5}"
        print(f"{r.variant:<70} {r.metric:<9} {s['mAP']:6.4f} {s['P@10']:6.4f} {s['P@1']:6.4f}"
              f" {r.dim * 4:6d} {speed} {rel}")
