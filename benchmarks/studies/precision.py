"""Would int8 or bf16 inference on the CPU keep the ranking? Measured on real tiles.

    python -m benchmarks.studies.precision [--data ../shared/data/orthos] [--tiles 600]

int8: the default model's OpenVINO graph quantized with NNCF (post-training, calibrated on
300 real ortho tiles; skipped without nncf). bf16: the same float32 graph compiled with
OpenVINO's bf16 inference precision, where the CPU has bf16 arithmetic (AVX512-BF16 or AMX;
elsewhere OpenVINO would run it in f32, so it is skipped). On `--tiles` real tiles each
reports recall@10 of each tile's neighbours against its float32 neighbours (adoption needs
>= 0.99) and the model-only tiles/s, float32 measured in the same run.
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
        import openvino as ov
    except ImportError:
        print("skipped: needs openvino")
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
    variants: dict[str, tuple[Any, str]] = {"f32": (model, "f32")}
    quant_s = None
    try:
        import nncf
    except ImportError:
        print("int8 skipped: needs nncf (pip install nncf)")
    else:
        calib = [tiles[i:i + 4] for i in range(0, min(300, len(tiles)), 4)]
        t0 = time.perf_counter()
        variants["int8"] = (nncf.quantize(model, nncf.Dataset(calib),
                                          subset_size=len(calib)), "f32")
        quant_s = round(time.perf_counter() - t0, 1)
    if "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        variants["bf16"] = (model, "bf16")
    else:
        print("bf16 skipped: this CPU has no bf16 arithmetic")
    runs = {}
    for name, (m, precision) in variants.items():
        req = core.compile_model(m, "CPU", {**cfg, "INFERENCE_PRECISION_HINT": precision})
        runs[name] = (lambda r: lambda b: np.asarray(r.infer({0: b})[0], np.float32))(
            req.create_infer_request())
    vecs = {name: embed(run, tiles) for name, run in runs.items()}
    speeds = {name: rate(run, tiles) for name, run in runs.items()}
    res = {
        "tiles": len(tiles), "model": fp.identity.name, "recipe": fp.identity.recipe,
        "recall_at_10_vs_f32": {k: round(recall_at_k(vecs["f32"], v), 4)
                                for k, v in vecs.items() if k != "f32"},
        "tiles_per_s": {k: round(v, 1) for k, v in speeds.items()},
        "speedup_vs_f32": {k: round(v / speeds["f32"], 2)
                           for k, v in speeds.items() if k != "f32"},
        "quantize_s": quant_s, "load_average": os.getloadavg(),
    }
    print(res)
    save(res, "precision.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
