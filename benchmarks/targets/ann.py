"""The search index at scale: build time, bytes, RAM, latency and recall@10 against exact.

    python -m benchmarks.targets.ann --n 180000            # store with full vectors (default)
    python -m benchmarks.targets.ann --n 10000000 --drop-full

Fingerprints are synthesised from real ones so that their distribution is realistic: the
orthomosaics in ../shared/data/orthos are indexed with the default model (cached under
benchmarks/results/orthos.tiles), and each synthetic fingerprint is

    x = a + t (b - a) + s (c - c'),   clipped at 0,

where a is a random real fingerprint, b one of a's 10 nearest real neighbours, t ~ U(0, 1),
(c, c') a random real fingerprint and its nearest neighbour and s ~ N(0, 0.25): points along
the segments between real neighbours, moved by a small step along a real local difference,
so the noise lies in the directions real fingerprints vary in (not isotropic). Queries are
fresh samples (not in the store; 500 by default).

n = 180,000: a real store (full vectors kept) is built, then ``ann.build``; queries go through
``knn.nearest`` (k=10, overlap suppression, metadata from SQLite) and the raw
``knn.ranked``, by the index and exactly; the prototype's method (a Python dict of lists,
512-d, a loop and a full sort; see benchmarks.targets.search) is timed in the same run.
n = 10,000,000 (--drop-full): 51 GB of float32 vectors do not fit this machine's disk, so
the store is written codes-only, as ``build-index --drop-full`` leaves it: index trained on
100,000 samples, vectors generated and added in chunks, the exact top 10 of every query
tracked chunk by chunk, the tiles' metadata rows written to SQLite.

Query figures come from a fresh process that opens the store (open time, RSS). It then
warms the store as ``tilesearch serve`` does (``store.warm``: the search files that fit in
half the memory left, read front to back; timed) and runs warm-up queries. After the
warm-up, ``fresh_ranked_index`` times as many queries drawn anew in every run (a time seed),
so that no earlier run read their candidates' finer codes (a virtual machine's host caches
what was read, even when the guest's page cache is dropped); then the recall queries at the
default nprobe (asked for the first time only in a store's first run), the other nprobe values
and a repeat of the default, which ask the same queries again, so what they read is cached.
``nearest`` is timed on fresh queries too. Large k: the first 50 recall queries ask for 1,000
hits (``ranked`` and ``nearest``), and recall@1000 is measured against the exact top 1,000
(tracked while the store is written). ``--keep DIR`` builds the store in DIR and keeps
it: a later run with the same DIR and settings only queries it (a store kept by an
older version, which tracked the exact top 10 only, first gets its exact top 1,000).

``--ram-limit GB`` holds the query process to GB of memory, page cache included: it runs in a
memory cgroup (v1 or v2; needs permission to create one), and the store's files are first
dropped from the page cache (``posix_fadvise(DONTNEED)``), so that everything the queries read
is charged to it and nothing cached by the build helps. The cgroup's peak usage is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.data import REPO, real_fingerprints
from benchmarks.common.measure import MemoryLimit, drop_cached, memory, read_bytes
from benchmarks.common.results import RESULTS_DIR, save
from benchmarks.common.synthetic import (
    IMAGES,
    Synth,
    build_store,
    exact_top,
    grid_shape,
    no_top,
    prototype_seconds,
    track,
    unit,
)
from tilesearch import ann
from tilesearch.models import ModelIdentity
from tilesearch.store import Store

QUERIES, K = 500, 10
BIG_K, BIG_K_QUERIES = 1000, 50
"""Large k: the first 50 recall queries ask for 1,000 hits each (recall@1000, latency)."""


# ----- building -----------------------------------------------------------------------------------
def write_store(path: Path, synth: Synth, n: int, full: bool, seed: int,
                queries: np.ndarray, codec: str = ann.DEFAULT_CODEC) -> dict[str, Any]:
    """Write an n-tile store; returns timings and the exact top K of the queries."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    draws = synth.draws(n, rng)
    qn = unit(queries)
    top_s, top_i = no_top(len(queries), BIG_K)  # the exact top 1,000, tracked as written
    chunk = 200_000
    if full:
        vecs = synth.vectors(draws)
        store = build_store(path, vecs)
        store.close()
        gen_s = time.perf_counter() - t0
        track(qn, unit(vecs), 0, top_s, top_i)
        with Store.open(path, writable=True) as s:
            t1 = time.perf_counter()
            report = ann.build(s, codec=codec)
            build_s = time.perf_counter() - t1
    else:
        identity = ModelIdentity("efficientnet-lite0", "b" * 64, synth.real.shape[1], "synth")
        s = Store.create(path, identity)
        spec = ann.choose_spec(n, codec)
        import faiss

        faiss.omp_set_num_threads(os.cpu_count() or 1)
        t1 = time.perf_counter()
        writer = ann.building.Writer.new(s, spec)  # a refining codec's finer codes go to disk
        writer.train(unit(synth.vectors(synth.draws(ann.spec.TRAIN_MAX, rng))))
        train_s = time.perf_counter() - t1
        for lo in range(0, n, chunk):
            x = unit(synth.vectors(draws[lo:lo + chunk]))
            writer.add(x)
            track(qn, x, lo, top_s, top_i)
            print(f"  added {lo + len(x):,}/{n:,} ({time.perf_counter() - t0:.0f} s)",
                  file=sys.stderr, flush=True)
        _codes_only_store(s, n, IMAGES, grid_shape(n))
        writer.commit(n)
        build_s = time.perf_counter() - t1
        gen_s = 0.0
        report = ann.BuildReport("built", n, spec.factory, writer.code_bytes, build_s, True)
        s.close()
        print(f"  trained in {train_s:.0f} s", file=sys.stderr)
    return {"draws": draws, "top_s": top_s, "top_i": top_i, "generate_store_s": gen_s,
            "build_index_s": build_s, "report": report.to_dict()}


def _codes_only_store(s: Store, n: int, images: int, shape: tuple[int, int]) -> None:
    """Metadata rows of n tiles on fake image grids and unit norms: the layout
    ``build-index --drop-full`` leaves (written directly: 51 GB of vectors would not fit)."""
    from tilesearch.records import ImageInfo

    rows, cols = shape
    per = rows * cols
    with s.db:
        s.db.execute("BEGIN")
        for img in range(images):
            info = ImageInfo(path=f"/bench/img{img:02d}.tif", width=(cols + 1) * 128,
                             height=(rows + 1) * 128, band_count=3, dtype="uint8",
                             bands=(1, 2, 3), crs=None, transform=None, mask="zero",
                             size_bytes=0, mtime=0.0)
            s.db.execute("INSERT INTO images(id, path, info, status, n_tiles, updated) "
                         "VALUES (?, ?, ?, 'done', ?, 0)",
                         (img + 1, info.path, json.dumps(info.to_dict()),
                          min(per, n - img * per)))
        s.db.executemany(
            "INSERT INTO tiles(id, image_id, col_off, row_off, width, height, valid) "
            "VALUES (?, ?, ?, ?, 256, 256, 1.0)",
            ((i, i // per + 1, (i % per % cols) * 128, (i % per // cols) * 128)
             for i in range(n)))
    with open(s.path / "norms.f32", "wb") as f:
        f.write(np.ones(n, np.float32).tobytes())
    s.manifest.update(full_from=n, vectors_file=f"vectors-{n}.f32")
    (s.path / f"vectors-{n}.f32").touch()


# ----- querying (in a fresh process) -------------------------------------------------------------
def query_process(store: str, queries_file: str, out: str, exact: bool, nprobe: int) -> None:
    """Open the store, answer every query by index (at several nprobe for an IVF index) and
    exactly when full vectors exist; memory from /proc/self/status. Warm-up queries (a
    ``warmup.npy`` beside the queries, when there is one) run first, untimed."""
    from tilesearch.retrieval import nearest, ranked
    from tilesearch.store import warm as warm_store

    t0, r0 = time.perf_counter(), read_bytes()
    s = Store.open(store)
    index = ann.cached(s)
    assert index is not None
    qs = np.load(queries_file)
    ranked(s, qs[0], K)  # first query: pages the index in
    res: dict[str, Any] = {"open_and_first_query_s": time.perf_counter() - t0,
                           "open_and_first_query_read_mb": (read_bytes() - r0) / 1e6,
                           "sweep": {}}
    t = time.perf_counter()  # as `tilesearch serve` does on start, but waiting for it
    w = warm_store(s, background=False)
    res |= {"warm_s": time.perf_counter() - t, "warm_read_gb": w.read_bytes / 1e9,
            "warmed": [p.name for p in w.warmed], "not_warmed": [p.name for p in w.skipped]}
    warmup = Path(queries_file).with_name("warmup.npy")
    if warmup.exists():  # a serving process after a while: the inverted lists paged in
        t = time.perf_counter()
        for q in np.load(warmup):
            ranked(s, q, K)
        res |= {"warmup_queries": len(np.load(warmup)), "warmup_s": time.perf_counter() - t,
                "after_warmup": memory()}
    if nprobe:  # --nprobe: time another number of lists first, on fresh queries
        index.spec = ann.IndexSpec(index.spec.factory, nprobe, index.spec.metric)
    default = index.spec
    fresh = np.load(Path(queries_file).with_name("fresh.npy"))  # never asked in any run
    r0 = read_bytes()
    res |= _stats("fresh_ranked_index", _timed(lambda q: ranked(s, q, K), fresh)[0])
    res["fresh_ranked_index_read_kb_per_query"] = (read_bytes() - r0) / 1e3 / len(fresh)
    others = [p for p in (8, 16, 32, 64) if p != default.nprobe] if default.is_ivf else []
    for lists in [default.nprobe, *others]:  # the default first
        index.spec = ann.IndexSpec(default.factory, lists, default.metric)
        lat, ids = _timed(lambda q: ranked(s, q, K)[0].tolist(), qs)
        res["sweep"][lists] = {**_stats("ranked_index", lat), "ids": ids}
    index.spec = default
    res |= {k: v for k, v in res["sweep"][default.nprobe].items() if k != "ids"}
    res["ids"] = res["sweep"][default.nprobe]["ids"]
    lat, _ = _timed(lambda q: ranked(s, q, K), qs)  # asked again: what they read is cached
    res |= {f"repeated_{k}": v for k, v in _stats("ranked_index", lat).items()}
    near = np.load(Path(queries_file).with_name("nearest.npy"))  # fresh queries
    res |= _stats("nearest_index", _timed(lambda q: nearest(s, q, K), near)[0])
    big = qs[:BIG_K_QUERIES]
    lat, big_ids = _timed(lambda q: ranked(s, q, BIG_K)[0].tolist(), big)
    res |= _stats(f"ranked_k{BIG_K}", lat) | {"big_k_ids": big_ids}
    res |= _stats(f"nearest_k{BIG_K}", _timed(lambda q: nearest(s, q, BIG_K), big)[0])
    ann.spec._faiss().omp_set_num_threads(os.cpu_count() or 1)
    t = time.perf_counter()
    index.search_batch(unit(qs).astype(np.float32), K)
    res["batch_queries_per_s"] = len(qs) / (time.perf_counter() - t)
    if exact:
        res |= _stats("ranked_exact", _timed(lambda q: ranked(s, q, K, exact=True), qs[:50])[0])
    res |= memory()
    Path(out).write_text(json.dumps(res))


def _timed(call: Any, queries: np.ndarray) -> tuple[list[float], list[Any]]:
    """Seconds each ``call(q)`` took, one query at a time, and what each returned."""
    lat, out = [], []
    for q in queries:
        t = time.perf_counter()
        out.append(call(q))
        lat.append(time.perf_counter() - t)
    return lat, out


def _stats(name: str, lat: list[float]) -> dict[str, float]:
    ms = sorted(x * 1e3 for x in lat)
    return {f"{name}_p50_ms": statistics.median(ms),
            f"{name}_p99_ms": ms[min(len(ms) - 1, int(0.99 * len(ms)))]}


def recall(synth: Synth, built: dict[str, Any], queries: np.ndarray,
           ids: list[list[int]], k: int = K) -> float:
    """Tie-aware recall@k: a returned id counts if its exact similarity reaches the k-th."""
    qn, hits = unit(queries[:len(ids)]), 0
    for q, got, kth in zip(qn, ids, built["top_s"][:len(ids), k - 1], strict=True):
        if got:
            sims = unit(synth.vectors(built["draws"][np.asarray(got[:k])])) @ q
            hits += int((sims >= kth - 1e-5).sum())
    return hits / (k * len(ids))


def _settings(a: argparse.Namespace) -> str:
    return json.dumps([a.n, a.drop_full, a.seed, a.queries, a.codec])


def keep_store(folder: Path, a: argparse.Namespace, built: dict[str, Any]) -> None:
    """Save what recall needs beside a kept store (see --keep)."""
    np.savez(folder / "built.npz", settings=_settings(a), report=json.dumps(built["report"]),
             **{k: v for k, v in built.items() if k != "report"})


def kept_store(folder: Path, a: argparse.Namespace, synth: Synth, queries: np.ndarray
               ) -> dict[str, Any] | None:
    """What `keep_store` saved for the same settings, or None (then the store is rebuilt)."""
    if not (folder / "built.npz").exists():
        shutil.rmtree(folder / "store.tiles", ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        return None
    saved = np.load(folder / "built.npz")
    if str(saved["settings"]) != _settings(a):
        sys.exit(f"{folder} holds a store built with other settings; give another --keep")
    built = {k: saved[k] for k in saved.files if k not in ("settings", "report")}
    built["report"] = json.loads(str(saved["report"]))
    if built["top_s"].shape[1] < BIG_K:  # kept by an older version: exact top 10 only
        print(f"  finding the exact top {BIG_K} of the queries (once)", file=sys.stderr)
        built["top_s"], built["top_i"] = exact_top(synth, built["draws"], queries, BIG_K)
        keep_store(folder, a, built)
    return built | {k: float(built[k]) for k in ("generate_store_s", "build_index_s")}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=180_000)
    ap.add_argument("--drop-full", action="store_true")
    ap.add_argument("--no-prototype", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--queries", type=int, default=QUERIES)
    ap.add_argument("--codec", default=ann.DEFAULT_CODEC, help="FAISS codec (ann.DEFAULT_CODEC)")
    ap.add_argument("--warmup", type=int, default=0,
                    help="untimed fresh queries first (a store served for a while)")
    ap.add_argument("--keep", type=Path, help="build the store in this folder and keep it; "
                    "a later run given the same folder and settings only queries it")
    ap.add_argument("--ram-limit", type=float, metavar="GB",
                    help="query in a memory cgroup of GB, page cache included")
    ap.add_argument("--nprobe", type=int, default=0,
                    help="lists visited by the first, fresh-query timing (default: the index's)")
    ap.add_argument("--query-process", nargs=5, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.query_process:
        store, queries_file, out_file, exact, lists = a.query_process
        query_process(store, queries_file, out_file, exact == "1", int(lists))
        return
    synth = Synth(real_fingerprints())
    queries = synth.vectors(synth.draws(a.queries, np.random.default_rng(a.seed + 99)))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        tmp = a.keep or Path(stack.enter_context(
            tempfile.TemporaryDirectory(prefix="bench-ann-", dir=RESULTS_DIR)))
        path = tmp / "store.tiles"
        built = kept_store(tmp, a, synth, queries) if a.keep else None
        if built is None:
            built = write_store(path, synth, a.n, not a.drop_full, a.seed, queries, a.codec)
            if a.keep:
                keep_store(tmp, a, built)
        bytes_on_disk = Store.open(path).bytes_on_disk()
        np.save(Path(tmp) / "q.npy", queries)
        fresh_seed = time.time_ns()  # queries no earlier run asked: their reads are cold
        np.save(Path(tmp) / "fresh.npy", synth.vectors(
            synth.draws(a.queries, np.random.default_rng(fresh_seed))))
        np.save(Path(tmp) / "nearest.npy", synth.vectors(
            synth.draws(100, np.random.default_rng(fresh_seed + 1))))
        if a.warmup:
            np.save(Path(tmp) / "warmup.npy", synth.vectors(
                synth.draws(a.warmup, np.random.default_rng(a.seed + 7))))
        out = Path(tmp) / "q.json"
        limit = MemoryLimit(int(a.ram_limit * 2**30)) if a.ram_limit else None
        if limit:
            stack.callback(limit.close)
            drop_cached(path)
        subprocess.run([sys.executable, "-m", "benchmarks.targets.ann", "--query-process",
                        str(path), str(Path(tmp) / "q.npy"), str(out), "0" if a.drop_full else "1",
                        str(a.nprobe)],
                       check=True, cwd=REPO, preexec_fn=limit.enter if limit else None)
        q = json.loads(out.read_text())
        if limit:
            q |= {"ram_limit_gb": a.ram_limit, "cgroup_peak_mb": limit.peak_mb()}
    q |= {"nprobe": a.nprobe or None, "fresh_seed": fresh_seed}
    sweep = {int(p): {k: v for k, v in r.items() if k != "ids"}
             | {"recall_at_10": recall(synth, built, queries, r["ids"])}
             for p, r in q.pop("sweep").items()}
    res = {"n": a.n, "dim": int(synth.real.shape[1]), "full_vectors_kept": not a.drop_full,
           "real_fingerprints": len(synth.real), "queries": a.queries, "k": K,
           "generate_store_s": built["generate_store_s"],
           "build_index_s": built["build_index_s"], "index": built["report"],
           "bytes_on_disk": bytes_on_disk, "bytes_per_tile": bytes_on_disk / a.n,
           "recall_at_10": recall(synth, built, queries, q.pop("ids")),
           f"recall_at_{BIG_K}": recall(synth, built, queries, q.pop("big_k_ids"), BIG_K),
           "big_k_queries": BIG_K_QUERIES, **q,
           "nprobe_sweep": sweep,
           "cpu_count": os.cpu_count()}
    if not a.no_prototype and a.n <= 200_000:
        res["prototype_s"] = prototype_seconds(a.n)
        res["speedup_p50_vs_prototype"] = (res["prototype_s"] * 1e3  # queries asked first
                                           / res["fresh_ranked_index_p50_ms"])
        res["speedup_nearest_vs_prototype"] = (res["prototype_s"] * 1e3
                                               / res["nearest_index_p50_ms"])
    print(json.dumps(res, indent=2))
    tag = "" if a.codec == ann.DEFAULT_CODEC else "-" + a.codec.replace(",", "-")
    tag += (f"-nprobe{a.nprobe}" if a.nprobe else "") + (
        f"-ram{a.ram_limit:g}G" if a.ram_limit else "")
    save(res, RESULTS_DIR / f"ann-{a.n}{'-codes' if a.drop_full else ''}{tag}.json")


if __name__ == "__main__":
    main()
