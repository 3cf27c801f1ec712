"""Would int8 inference on the CPU keep the ranking? Measured on real tiles, not assumed.

    python -m benchmarks.studies.precision [--data ../shared/data/orthos] [--tiles 600]

Quantizes the default model's OpenVINO graph to int8 with NNCF (post-training, calibrated on
300 real ortho tiles), then on `--tiles` real tiles reports: recall@10 of each tile's int8
neighbours against its float32 neighbours (adoption needs >= 0.99), and the model-only
tiles/s of both graphs measured in the same run. bf16 is not measured on a CPU without
AVX512-BF16 or AMX (OpenVINO runs such hints in f32 there).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.data import ORTHOS, real_tiles
from benchmarks.common.measure import embed, recall_at_k, tiles_per_second
from benchmarks.common.results import save
from tilesearch.models import load_model

DEFAULT_DATA = ORTHOS


def rate(run: Any, tiles: np.ndarray, batch: int = 64, repeats: int = 5) -> float:
    return tiles_per_second(run, np.ascontiguousarray(tiles[:batch]), repeats)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--tiles", type=int, default=600)
    args = ap.parse_args(argv)
    if not args.data.exists():
        print(f"skipped: {args.data} not found")
        return 0
    try:
        import nncf
        import openvino as ov
    except ImportError:
        print("skipped: needs nncf (pip install nncf) and openvino")
        return 0
    from tilesearch.models.runtime import cache_dir

    fp = load_model(runtime="openvino")
    xml = sorted(cache_dir().glob(
        f"{fp.identity.name}-{fp.identity.weights_sha256[:16]}-{fp.identity.recipe}-256px-"
        "openvino-*.xml"))[-1]
    tiles = real_tiles(args.data, args.tiles)
    core = ov.Core()
    threads = len(os.sched_getaffinity(0))
    cfg = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    model = core.read_model(str(xml))
    calib = [tiles[i:i + 4] for i in range(0, min(300, len(tiles)), 4)]
    t0 = time.perf_counter()
    q = nncf.quantize(model, nncf.Dataset(calib), subset_size=len(calib))
    quant_s = time.perf_counter() - t0
    runs = {}
    for name, m in (("f32", model), ("int8", q)):
        req = core.compile_model(m, "CPU", {**cfg, "INFERENCE_PRECISION_HINT": "f32"})
        runs[name] = (lambda r: lambda b: np.asarray(r.infer({0: b})[0], np.float32))(
            req.create_infer_request())
    vecs = {name: embed(run, tiles) for name, run in runs.items()}
    speeds = {name: rate(run, tiles) for name, run in runs.items()}
    res = {
        "tiles": len(tiles), "model": fp.identity.name, "recipe": fp.identity.recipe,
        "recall_at_10_int8_vs_f32": round(recall_at_k(vecs["f32"], vecs["int8"]), 4),
        "tiles_per_s": {k: round(v, 1) for k, v in speeds.items()},
        "speedup_int8": round(speeds["int8"] / speeds["f32"], 2),
        "quantize_s": round(quant_s, 1), "load_average": os.getloadavg(),
    }
    print(res)
    save(res, "precision.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
