"""The web app's find-all threshold slider on a 180,000-tile store: how fast does it answer?

    python -m benchmarks.targets.slider [--n 180000] [--drags 3]

The store is the cached synthetic one the load test serves (benchmarks.common.synthetic:
512-d clustered fingerprints on 8 images without georeferencing, so the page shows one image
in its pixels). `tilesearch serve` runs in a subprocess on 127.0.0.1; over HTTP, as the page
does, a label set is marked (a random tile and its 19 nearest neighbours +, 20 random tiles
-), Find all is pressed (the first request fits the classifier and scores every tile), then
the slider is dragged: thresholds 0.95 down to 0.05 in steps of 0.05, each one a find
(`?threshold=T&image=1`: count, validation, the places' outlines in image 1's pixels) and the
heatmap PNG at T, as the page requests them. Each drag shifts the thresholds by 0.001, so no
answer comes from the server's cache of recent thresholds. Prints the first find, and the
median, 90th percentile and worst of the slider's finds and heatmaps; the target (issue 20)
is under 200 ms at 180,000 tiles.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks.common.results import RESULTS_DIR, save
from benchmarks.common.synthetic import served_store
from benchmarks.common.web import free_port, start_server
from tilesearch.store import Store

STEPS = [round(0.95 - 0.05 * i, 3) for i in range(19)]
"""The slider's thresholds in one drag, high to low."""


def label_tiles(path: Path, seed: int = 0) -> tuple[list[int], list[int]]:
    """A random tile and its 19 nearest neighbours (cosine) as +, 20 other random tiles as -."""
    rng = np.random.default_rng(seed)
    with Store.open(path) as s:
        x = np.array(s.vectors(), np.float32)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    seed_tile = int(rng.integers(len(x)))
    pos = np.argsort(-(x @ x[seed_tile]))[:20]
    rest = np.setdiff1d(np.arange(len(x)), pos)
    return sorted(int(t) for t in pos), sorted(int(t) for t in rng.choice(rest, 20, False))


def timed_get(c: httpx.Client, url: str) -> tuple[float, httpx.Response]:
    t0 = time.perf_counter()
    r = c.get(url)
    took = time.perf_counter() - t0
    r.raise_for_status()
    return took, r


def drag(c: httpx.Client, shift: float) -> list[dict[str, Any]]:
    """One drag of the slider: per threshold, seconds of the find and of the heatmap."""
    out = []
    for t in STEPS:
        t = round(t + shift, 4)
        find_s, r = timed_get(c, f"/api/labels/bench/find?threshold={t}&image=1")
        found = r.json()
        heat_s, _ = timed_get(c, found["heatmap"]["url"])
        out.append({"threshold": t, "find_s": find_s, "heatmap_s": heat_s,
                    "places": found["count"], "tiles": found["tiles"]})
    return out


def summary(values: list[float]) -> dict[str, float]:
    ms = sorted(1000 * v for v in values)
    return {"median_ms": round(statistics.median(ms), 1),
            "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 1), "max_ms": round(ms[-1], 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=180_000, help="tiles in the store")
    ap.add_argument("--drags", type=int, default=3)
    ap.add_argument("--out", default="slider.json")
    args = ap.parse_args(argv)
    path = served_store(args.n)
    with Store.open(path, writable=True) as s:  # a fresh label set each run
        if "bench" in {ls.name for ls in s.label_sets()}:
            s.remove_label_set("bench")
    pos, neg = label_tiles(path)
    port = free_port()
    proc = start_server(path, port, {})
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
            c.post("/api/labels/bench", json={"positives": pos, "negatives": neg}
                   ).raise_for_status()
            first, _ = timed_get(c, "/api/labels/bench/find?threshold=0.5&image=1")
            steps = [step for i in range(args.drags) for step in drag(c, 0.001 * (i + 1))]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    res = {"tiles": args.n, "dim": 512, "cpus": os.cpu_count(), "drags": args.drags,
           "first_find_s": round(first, 3), "find": summary([s["find_s"] for s in steps]),
           "heatmap": summary([s["heatmap_s"] for s in steps]),
           "places_range": [min(s["places"] for s in steps), max(s["places"] for s in steps)],
           "tiles_range": [min(s["tiles"] for s in steps), max(s["tiles"] for s in steps)],
           "steps": steps}
    print(f"{args.n:,} tiles: first find (fit + score every tile) {first:.2f} s; slider "
          f"({len(steps)} thresholds, {res['places_range'][0]}-{res['places_range'][1]} "
          f"places): find {res['find']['median_ms']:.0f} ms median, "
          f"{res['find']['p90_ms']:.0f} p90, {res['find']['max_ms']:.0f} max; heatmap "
          f"{res['heatmap']['median_ms']:.0f} / {res['heatmap']['p90_ms']:.0f} / "
          f"{res['heatmap']['max_ms']:.0f} ms")
    save(res, RESULTS_DIR / args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
