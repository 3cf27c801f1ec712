"""GPU indexing throughput and agreement with the CPU path (needs a CUDA device).

    python -m benchmarks.studies.gpu [--data ../shared/data/orthos] [--batch 512] [--tiles 2000]

Reports, on the GPU named in the output: model-only tiles/s (float16 and bfloat16 autocast),
end-to-end tiles/s of `index_images` over `--data` (reading and decoding on CPU threads,
inference on the GPU), and recall@10 of GPU neighbours against CPU (OpenVINO float32)
neighbours on `--tiles` real tiles (target >= 0.99). Target end to end on an H100-class GPU:
at least 5,000 tiles/s. Without CUDA it prints 'no CUDA device' and exits 0.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.data import ORTHOS, real_tiles
from benchmarks.common.measure import embed, recall_at_k
from benchmarks.common.results import save
from tilesearch.ingest import index_images
from tilesearch.models import load_model
from tilesearch.models.device import cuda_available, cuda_runner
from tilesearch.store import Store

DEFAULT_DATA = ORTHOS


def model_rate(run: Any, batch: int, repeats: int = 10) -> float:
    import torch

    x = np.random.default_rng(0).integers(0, 256, (batch, 256, 256, 3), dtype=np.uint8)
    run(x)
    run(x)
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t = time.perf_counter()
        run(x)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--tiles", type=int, default=2000)
    ap.add_argument("--readers", type=int, default=min(8, os.cpu_count() or 1),
                    help="reader threads feeding the GPU (the CLI's default on a GPU)")
    args = ap.parse_args(argv)
    if not cuda_available():
        print("no CUDA device: this benchmark needs a GPU that torch can see; nothing measured")
        return 0
    import torch

    gpu = load_model(device="cuda")
    res: dict[str, Any] = {"gpu": torch.cuda.get_device_name(0), "batch": args.batch,
                           "readers": args.readers,
                           "torch": torch.__version__, "cpu_cores": os.cpu_count()}
    res["model_only_tiles_per_s"] = {
        dtype: round(model_rate(cuda_runner(_module(), dtype), args.batch), 1)
        for dtype in ("float16", "bfloat16", "float32")
    }
    if args.data.exists():
        with tempfile.TemporaryDirectory() as tmp:
            store = Store.create(Path(tmp) / "gpu.tiles", gpu.identity)
            report = index_images([args.data], store, gpu, batch_size=args.batch,
                                  readers=args.readers)
            store.close()
        res["end_to_end_tiles_per_s"] = round(report.tiles_per_second, 1)
        res["end_to_end_tiles"] = report.tiles_added
        tiles = real_tiles(args.data, args.tiles)
        cpu = load_model(runtime="openvino", device="cpu")
        ref = embed(cpu.embed, tiles)
        res["recall_at_10_gpu_vs_cpu"] = round(recall_at_k(ref, embed(gpu.embed, tiles)), 4)
        res["recall_tiles"] = len(tiles)
    res["target_end_to_end_tiles_per_s"] = 5000
    print(res)
    save(res, "gpu.json")
    return 0


def _module() -> Any:
    """The default model's torch module (uint8 NHWC tiles -> fingerprints), on the CPU."""
    from tilesearch.models import DEFAULT_MODEL, DEFAULT_RECIPE
    from tilesearch.models.recipes import apply_recipe
    from tilesearch.models.registry import _REGISTRY

    entry = _REGISTRY[DEFAULT_MODEL]
    return apply_recipe(entry.build(entry.locate(None)), DEFAULT_RECIPE)


if __name__ == "__main__":
    raise SystemExit(main())
