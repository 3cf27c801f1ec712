"""Load test of the web app: concurrent clients searching a 180,000-tile store over HTTP.

    python -m benchmarks.targets.serve [--n 180000] [--clients 20] [--seconds 30]

The store holds synthetic fingerprints (those of benchmarks.common.synthetic, as the search
benchmark uses: 512-d, clustered, overlapping tiles alike) and is built once, then reused from
benchmarks/results/serve-store-N.tiles.
`tilesearch serve` runs in a subprocess on 127.0.0.1 (a free port); each client is a thread
with its own HTTP connection posting `/api/search` for a random tile id (k=10) back to back
until the time is up. Prints p50/p90/p99 latency, requests per second and errors; the server
is stopped at the end. Only loopback traffic; bounded in time. By default the store gets its
search index first (`tilesearch build-index`, as the README advises for big stores);
`--exact` measures exact search instead (the index is removed from the cached store).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common.results import RESULTS_DIR as RESULTS
from benchmarks.common.results import save
from benchmarks.common.synthetic import served_store as ensure_store
from benchmarks.common.web import free_port, start_server

DEFAULT_OUT = RESULTS / "serve.json"


def set_index(path: Path, wanted: bool) -> None:
    """Build the store's search index (or forget it, for exact search)."""
    from tilesearch import ann
    from tilesearch.store import Store

    with Store.open(path, writable=True) as s:
        if wanted:
            r = ann.build(s, force=True, rebuild=True)
            print(f"search index {r.action}: {r.factory} in {r.seconds:.1f} s", flush=True)
        elif s.manifest.get("ann"):
            s.manifest.pop("ann")
            s.set_manifest("format", s.manifest["format"])


def client(base: str, n: int, k: int, stop: float, seed: int,
           out: list[tuple[float, bool]]) -> None:
    """Search random tiles back to back until `stop`; appends (seconds, ok) per request."""
    rng = random.Random(seed)
    with httpx.Client(base_url=base, timeout=30) as c:
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            try:
                r = c.post("/api/search", json={"tile": rng.randrange(n), "k": k})
                ok = r.status_code == 200 and len(r.json()["results"]) == k
            except httpx.HTTPError:
                ok = False
            out.append((time.perf_counter() - t0, ok))


def load(base: str, n: int, clients: int, seconds: float, k: int) -> dict[str, Any]:
    results: list[list[tuple[float, bool]]] = [[] for _ in range(clients)]
    stop = time.monotonic() + seconds
    threads = [threading.Thread(target=client, args=(base, n, k, stop, i, results[i]))
               for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat = sorted(s for r in results for s, _ in r)
    errors = sum(not ok for r in results for _, ok in r)
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [lat[0]] * 99
    return {"requests": len(lat), "errors": errors, "rps": len(lat) / seconds,
            "p50_ms": q[49] * 1e3, "p90_ms": q[89] * 1e3, "p99_ms": q[98] * 1e3,
            "max_ms": lat[-1] * 1e3}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=180_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--blas-threads", default=None,
                        help="OMP/OpenBLAS/MKL threads of the server (default: numpy's own)")
    parser.add_argument("--exact", action="store_true", help="no search index: exact search")
    parser.add_argument("--app-blas-threads", type=int, default=None,
                        help="create_app(blas_threads=) (0: BLAS left as it is)")
    parser.add_argument("--searches", type=int, default=None,
                        help="create_app(searches=): searches at once")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    store = ensure_store(args.n)
    set_index(store, not args.exact)
    env = {v: args.blas_threads for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                          "MKL_NUM_THREADS")} if args.blas_threads else {}
    port = free_port()
    app_options = {k: v for k, v in (("blas_threads", args.app_blas_threads),
                                     ("searches", args.searches)) if v is not None}
    if app_options.get("blas_threads") == 0:
        app_options["blas_threads"] = None
    proc = start_server(store, port, env, args.workers, app_options or None)
    base = f"http://127.0.0.1:{port}"
    try:
        single = load(base, args.n, 1, min(5.0, args.seconds), args.k)  # warm, one client
        res = load(base, args.n, args.clients, args.seconds, args.k)
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"one client:  p50 {single['p50_ms']:.0f} ms  p99 {single['p99_ms']:.0f} ms  "
          f"{single['rps']:.1f} req/s")
    print(f"{args.clients} clients, {args.seconds:.0f} s, {args.n:,} tiles: "
          f"{res['requests']} requests, {res['errors']} errors, {res['rps']:.1f} req/s, "
          f"p50 {res['p50_ms']:.0f} ms, p90 {res['p90_ms']:.0f} ms, p99 {res['p99_ms']:.0f} ms")
    save({"n": args.n, "clients": args.clients, "seconds": args.seconds, "k": args.k,
          "search_index": not args.exact, "workers": args.workers,
          "blas_threads": args.blas_threads, "app_options": app_options, "cpus": os.cpu_count(),
          "machine": platform.platform(), "single_client": single, **res}, args.out)
    return 1 if res["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
