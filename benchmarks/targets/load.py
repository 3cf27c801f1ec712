"""Mixed load on the web app: searches, map tiles and image uploads from many clients at once.

    python -m benchmarks.targets.load [--clients 20] [--seconds 30] [--repeats 5] [--workers 1 2]

`tilesearch serve` runs in a subprocess on 127.0.0.1 only (a free port), over a store of two
crops of the real orthomosaics (../shared/data/orthos; seeded synthetic GeoTIFFs when absent)
indexed with the default model, built once into benchmarks/results/load-store.tiles. Each
client is a thread with its own HTTP connection that, back to back until the time is up,
posts `/api/search` for a random tile (60 %), gets a random map tile (30 %) or uploads one of
the store's thumbnails to `/api/search/image` (10 %). Every request has a deadline
(`--deadline`, default 10 s); one that does not answer within it counts as a hang. Reports
per route p50/p99/max latency, errors and hangs, and the server's peak memory (RSS of its
process tree, sampled every 50 ms). Loops are bounded in time and in requests.
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
import numpy as np

from benchmarks.common.data import ORTHOS
from benchmarks.common.measure import Sampler
from benchmarks.common.results import RESULTS_DIR, save
from benchmarks.common.web import free_port, start_server

STORE = RESULTS_DIR / "load-store.tiles"
MIX = (("search", 0.6), ("map tile", 0.3), ("upload", 0.1))
MAX_REQUESTS = 100_000
"""Requests one client sends at most in one run, whatever the time."""


def crops(folder: Path, size: int) -> list[Path]:
    """A size x size crop from the middle of each real orthomosaic, or synthetic GeoTIFFs."""
    import rasterio
    from rasterio.windows import Window

    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(ORTHOS.glob("*.tif"))[:2] if ORTHOS.is_dir() else []
    out = []
    for n, src_path in enumerate(sources or [None, None]):
        dst = folder / (src_path.name if src_path else f"synthetic{n}.tif")
        out.append(dst)
        if dst.exists():
            continue
        if src_path is None:
            profile, data = synthetic(size, n)
        else:
            with rasterio.open(src_path) as src:
                win = Window((src.width - size) // 2, (src.height - size) // 2, size, size)
                data = src.read(list(range(1, min(src.count, 3) + 1)), window=win)
                profile = {"crs": src.crs, "transform": src.window_transform(win),
                           "dtype": data.dtype}
        with rasterio.open(dst, "w", driver="GTiff", width=size, height=size,
                           count=len(data), tiled=True, compress="deflate", **profile) as d:
            d.write(data)
    return out


def synthetic(size: int, seed: int) -> tuple[dict[str, Any], np.ndarray]:
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    bands = [127 + 100 * np.sin(x * rng.uniform(0.005, 0.05) + y * rng.uniform(0.005, 0.05))
             for _ in range(3)]
    data = np.clip(np.stack(bands) + rng.normal(0, 8, (3, size, size)), 0, 255)
    return ({"crs": "EPSG:32633", "transform": from_origin(500_000, 5_000_000, 0.5, 0.5),
             "dtype": "uint8"}, data.astype(np.uint8))


def ensure_store(size: int) -> Path:
    """The cached store of the crops, indexed with the default model (built on first use)."""
    if (STORE / "manifest.json").exists():
        return STORE
    from tilesearch import index

    t0 = time.perf_counter()
    report = index(crops(RESULTS_DIR / "load-images", size), STORE)
    print(f"built {STORE}: {report.tiles_added} tiles in {time.perf_counter() - t0:.0f} s",
          flush=True)
    return STORE


def plan(base: str) -> dict[str, Any]:
    """What clients ask for: tile count, map tiles in range, upload bodies (thumbnails)."""
    with httpx.Client(base_url=base, timeout=60) as c:
        images = c.get("/api/images").json()
        n = c.get("/api/info").json()["tiles"]
        uploads = [c.get(f"/api/tiles/{i}/thumbnail.png?size=256").content
                   for i in range(0, n, max(1, n // 8))][:8]
    tiles = []
    for im in images:
        for z in range(im["max_zoom"] + 1):
            scale = 256 * 2 ** (im["max_zoom"] - z)
            tiles += [(im["id"], z, x, y) for x in range(-(-im["width"] // scale))
                      for y in range(-(-im["height"] // scale))]
    return {"n": n, "tiles": tiles, "uploads": uploads}


def request(c: httpx.Client, route: str, rng: random.Random, todo: dict[str, Any]) -> bool:
    if route == "search":
        r = c.post("/api/search", json={"tile": rng.randrange(todo["n"]), "k": 10})
        return r.status_code == 200 and bool(r.json()["results"])
    if route == "map tile":
        image, z, x, y = rng.choice(todo["tiles"])
        return c.get(f"/api/images/{image}/tiles/{z}/{x}/{y}.png").status_code == 200
    files = {"file": ("query.png", rng.choice(todo["uploads"]), "image/png")}
    r = c.post("/api/search/image", files=files, data={"params": '{"k": 10}'})
    return r.status_code == 200 and bool(r.json()["results"])


def client(base: str, todo: dict[str, Any], stop: float, deadline: float, seed: int,
           out: list[tuple[str, float, str]]) -> None:
    """Mixed requests back to back until `stop`; appends (route, seconds, outcome)."""
    rng = random.Random(seed)
    routes, weights = zip(*MIX, strict=True)
    with httpx.Client(base_url=base, timeout=deadline) as c:
        for _ in range(MAX_REQUESTS):
            if time.monotonic() >= stop:
                break
            route = rng.choices(routes, weights)[0]
            t0 = time.perf_counter()
            try:
                outcome = "ok" if request(c, route, rng, todo) else "error"
            except httpx.TimeoutException:
                outcome = "hang"
            except httpx.HTTPError:
                outcome = "error"
            out.append((route, time.perf_counter() - t0, outcome))


def summary(samples: list[tuple[str, float, str]], seconds: float) -> dict[str, Any]:
    routes: dict[str, Any] = {}
    for route in [r for r, _ in MIX] + ["all"]:
        lat = sorted(s for r, s, _ in samples if route in (r, "all"))
        if not lat:
            continue
        q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [lat[0]] * 99
        routes[route] = {"requests": len(lat), "p50_ms": q[49] * 1e3, "p99_ms": q[98] * 1e3,
                         "max_ms": lat[-1] * 1e3}
    return {"requests": len(samples), "rps": len(samples) / seconds,
            "errors": sum(o == "error" for *_, o in samples),
            "hangs": sum(o == "hang" for *_, o in samples), "routes": routes}


def run_once(store: Path, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    proc = start_server(store, port, {}, workers)
    base = f"http://127.0.0.1:{port}"
    sampler = Sampler(proc.pid)
    try:
        todo = plan(base)
        sampler.start()
        samples: list[tuple[str, float, str]] = []
        stop = time.monotonic() + args.seconds
        threads = [threading.Thread(target=client, args=(base, todo, stop, args.deadline, i,
                                                         samples), daemon=True)
                   for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(args.seconds + 2 * args.deadline + 10)
        res = summary(samples, args.seconds)
        res["stuck_clients"] = sum(t.is_alive() for t in threads)
    finally:
        sampler.stop.set()
        proc.terminate()
        proc.wait(20)
    res["server_peak_rss_mb"] = sampler.peak / 1e6
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--deadline", type=float, default=10.0,
                        help="seconds a request may take before it counts as a hang")
    parser.add_argument("--crop", type=int, default=2048, help="px of each image crop")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "load.json")
    args = parser.parse_args(argv)
    store = ensure_store(args.crop)
    runs: dict[str, list[dict[str, Any]]] = {}
    bad = 0
    for rep in range(args.repeats):  # interleaved: w1 w2 w1 w2 ...
        for workers in args.workers:
            res = run_once(store, workers, args)
            runs.setdefault(f"workers={workers}", []).append(res)
            bad += res["errors"] + res["hangs"] + res["stuck_clients"]
            routes = "  ".join(f"{r} p50 {v['p50_ms']:.0f} p99 {v['p99_ms']:.0f} ms"
                               for r, v in res["routes"].items())
            print(f"--workers {workers} run {rep + 1}: {res['requests']} requests "
                  f"({res['rps']:.0f}/s), {res['errors']} errors, {res['hangs']} hangs, "
                  f"peak RSS {res['server_peak_rss_mb']:.0f} MB | {routes}", flush=True)
    for key, results in runs.items():
        med = {r: statistics.median(x["routes"][r]["p99_ms"] for x in results)
               for r in results[0]["routes"]}
        print(f"{key} median of {len(results)} runs: p99 " + ", ".join(
            f"{r} {v:.0f} ms" for r, v in med.items()) + ", peak RSS "
            f"{statistics.median(x['server_peak_rss_mb'] for x in results):.0f} MB")
    save({"clients": args.clients, "seconds": args.seconds, "repeats": args.repeats,
          "deadline": args.deadline, "mix": dict(MIX), "store": store.name,
          "real_data": ORTHOS.is_dir(), "cpus": os.cpu_count(),
          "machine": platform.platform(), "runs": runs}, args.out)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
