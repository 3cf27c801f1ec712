"""Would int8 or bf16 inference on the CPU keep the ranking? Measured on real tiles.

    python -m benchmarks.studies.precision [--data ../shared/data/orthos] [--tiles 600]

int8: the default model's OpenVINO graph quantized with NNCF (post-training, calibrated on
300 real ortho tiles; skipped without nncf). bf16 and f16: the same float32 graph compiled
with OpenVINO's bf16 or f16 inference precision, where the CPU has that arithmetic
(AVX512-BF16 or AMX; AVX512-FP16; elsewhere OpenVINO would run it in f32, so it is skipped).
"f32 to block K, bf16 after": the graph cut after EfficientNet block K into two compiled
models, the first in float32 and the rest in bf16 (OpenVINO's CPU plugin keeps no single
layer in f32 under a bf16 hint, so a split is the way to mix). "f32 to block K, int8 after":
NNCF told to leave the operations up to block K's end unquantized. On `--tiles` real tiles each
reports recall@10 of each tile's neighbours against its float32 neighbours (adoption needs
>= 0.99) and the model-only tiles/s (batches of 64, every variant timed in turn, the order
reversed every other round, medians), float32 in the same rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.data import ORTHOS, real_tiles
from benchmarks.common.measure import (
    default_openvino_xml,
    embed,
    interleaved,
    recall_at_k,
    timed,
)
from benchmarks.common.results import save
from tilesearch.models import load_model

DEFAULT_DATA = ORTHOS


SPLITS = (2, 5, 8)
"""Blocks after which the graph is cut for the f32-then-bf16 variants."""


def rates(runs: dict[str, Any], tiles: np.ndarray, batch: int = 64, rounds: int = 7
          ) -> dict[str, float]:
    """Tiles/s of each run on one batch: every run once a round, the order reversed every
    other round; medians."""
    b = np.ascontiguousarray(tiles[:batch])
    for run in runs.values():
        run(b)  # warm-up

    def lap(run: Any) -> Callable[[], float]:
        return lambda: timed(run, b)[0]

    laps = interleaved({k: lap(run) for k, run in runs.items()}, rounds)
    return {k: batch / statistics.median(v) for k, v in laps.items()}


def _last_op(model: Any, block: int) -> int:
    """Where EfficientNet block `block` ends in the graph's order of operations."""
    ops = model.get_ordered_ops()
    return max(i for i, op in enumerate(ops) if f"._blocks.{block}." in op.get_friendly_name())


def _front_names(model: Any, block: int) -> list[str]:
    """The operations up to the end of block `block`, which NNCF is to leave in float32."""
    return [op.get_friendly_name() for op in model.get_ordered_ops()[:_last_op(model, block) + 1]]


def _infer(request: Any) -> Any:
    return lambda b: np.asarray(request.infer({0: b})[0], np.float32)


def split_run(core: Any, xml: Path, block: int, cfg: dict[str, Any]) -> Any:
    """The graph cut after EfficientNet block `block`: the front compiled in f32, the rest in
    bf16 (the rest also reads the tiles' shape, for the recipe's average over turns)."""
    import openvino as ov

    front_model, back_model = core.read_model(str(xml)), core.read_model(str(xml))

    def cut(model: Any) -> Any:
        return model.get_ordered_ops()[_last_op(model, block)]

    front = ov.Model([cut(front_model).output(0)], front_model.get_parameters())
    out = cut(back_model).output(0)
    mid = ov.opset13.parameter(out.get_partial_shape(), out.get_element_type())
    for target in list(out.get_target_inputs()):
        target.replace_source_output(mid.output(0))
    back = ov.Model(back_model.get_results(), [mid, *back_model.get_parameters()])
    first = core.compile_model(front, "CPU", {**cfg, "INFERENCE_PRECISION_HINT": "f32"})
    rest = core.compile_model(back, "CPU", {**cfg, "INFERENCE_PRECISION_HINT": "bf16"})
    a, b = first.create_infer_request(), rest.create_infer_request()
    return lambda x: np.asarray(b.infer({0: a.infer({0: x})[0], 1: x})[0], np.float32)


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
    fp = load_model(runtime="openvino")
    xml = default_openvino_xml(fp.identity)
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
        for block in SPLITS:
            front = nncf.IgnoredScope(names=_front_names(model, block), validate=False)
            variants[f"f32 to block {block}, int8 after"] = (nncf.quantize(
                model, nncf.Dataset(calib), subset_size=len(calib), ignored_scope=front), "f32")
    caps = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    for precision, cap in (("bf16", "BF16"), ("f16", "FP16")):
        if cap in caps:
            variants[precision] = (model, precision)
        else:
            print(f"{precision} skipped: this CPU has no {precision} arithmetic")
    runs = {}
    for name, (m, precision) in variants.items():
        req = core.compile_model(m, "CPU", {**cfg, "INFERENCE_PRECISION_HINT": precision})
        runs[name] = _infer(req.create_infer_request())
    if "bf16" in variants:
        for block in SPLITS:
            runs[f"f32 to block {block}, bf16 after"] = split_run(core, xml, block, cfg)
    vecs = {name: embed(run, tiles) for name, run in runs.items()}
    speeds = rates(runs, tiles)
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
