"""Two single-thread fingerprinting processes side by side, with OpenVINO's CPU pinning on
and off: what made two Ray workers no faster than one (docs/cluster.md).

    python -m benchmarks.studies.pinning [--seconds 20]

Each process loads the default model with one inference thread and fingerprints batches of 64
random 256 px tiles for `--seconds`; both start together. Prints tiles/s per process and the
sum, pinned (OpenVINO's default) and unpinned (what tilesearch now asks for when a process
uses fewer threads than there are cores).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

from benchmarks.common.data import REPO
from benchmarks.common.results import RESULTS_DIR, save


def child(pin: bool, seconds: float) -> None:
    from tilesearch import api
    from tilesearch.models import runtime

    config = runtime.openvino_config
    runtime.openvino_config = lambda threads, streams=1: {**config(threads, streams),
                                                          "ENABLE_CPU_PINNING": pin}
    fp = api.load_fingerprinter(runtime="openvino", threads=1)
    tiles = np.random.default_rng(0).integers(0, 255, (64, 256, 256, 3), dtype=np.uint8)
    fp.embed(tiles[:8])
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < seconds:
        fp.embed(tiles)
        n += len(tiles)
    print(json.dumps(n / (time.perf_counter() - t)))


def side_by_side(pin: bool, seconds: float) -> list[float]:
    cmd = [sys.executable, "-m", "benchmarks.studies.pinning", "--child", "1" if pin else "0",
           "--seconds", str(seconds)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                              cwd=REPO)
             for _ in range(2)]
    return [float(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--child", choices=("0", "1"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child is not None:
        child(a.child == "1", a.seconds)
        return
    res = {}
    for pin in (True, False):
        rates = side_by_side(pin, a.seconds)
        res["pinned" if pin else "unpinned"] = rates
        print(f"{'pinned' if pin else 'unpinned':>8}: " + ", ".join(f"{r:.1f}" for r in rates)
              + f" tiles/s (sum {sum(rates):.1f})")
    ratio = sum(res["unpinned"]) / sum(res["pinned"])
    print(f"unpinned / pinned: {ratio:.2f}x")
    save(res | {"ratio": ratio}, RESULTS_DIR / "pinning.json")


if __name__ == "__main__":
    main()
