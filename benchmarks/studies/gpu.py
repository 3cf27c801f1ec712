"""The GPU check: indexing throughput on a GPU and agreement with the CPU path.

    python -m benchmarks.studies.gpu [--data DIR] [--synthetic 16384] [--batch 512]

Indexes `--data` (default ../shared/data/orthos), or where it is missing a synthetic
orthomosaic of `--synthetic` px a side (a tiled JPEG GeoTIFF, the format of users' COGs,
written first and not timed), on the GPU, and prints: end-to-end tiles/s (`api.index` as a
user runs it, model loaded, every tile stored; reading and decoding on CPU threads), the
model alone at float16, bfloat16 and float32 autocast, and recall@10 of GPU fingerprints
against CPU float32 fingerprints of the same tiles (torch on the CPU: OpenVINO where
installed). Targets on an H100/H200-class GPU: at least 5,000 tiles/s end to end, recall@10
at least 0.99. Without CUDA it prints 'no CUDA device' and exits 0; `--device cpu` runs the
same steps on the CPU (a dry run of the script itself, small `--synthetic`).

On the project's GPU machine (it has torch and CUDA, but not the project's other wheels),
`make gpu-wheels` here first fetches them into .whl/ (git-ignored, about 55 MB); the device
command is then (timeout 600 s, carry [".whl"]):

    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    && PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 python3 -m benchmarks.studies.gpu --out $OUT
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.data import ORTHOS, real_blocks, real_tiles
from benchmarks.common.indexing import network_module
from benchmarks.common.measure import embed, recall_at_k
from tilesearch.models import block_tiles
from tilesearch.options import STRIDE

DEFAULT_DATA = ORTHOS


def synthetic_ortho(path: Path, side: int, seed: int = 0) -> Path:
    """A side x side RGB GeoTIFF (EPSG:32633, 5 cm pixels, tiled 512 px, JPEG): smooth fields
    of colour with texture and scattered disks, so tiles differ as real ones do."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    coarse = rng.integers(30, 220, (side // 256 + 2, side // 256 + 2, 3)).astype(np.float32)
    profile = {"driver": "GTiff", "width": side, "height": side, "count": 3, "dtype": "uint8",
               "crs": "EPSG:32633", "transform": from_origin(500000, 4800000, 0.05, 0.05),
               "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "jpeg",
               "photometric": "ycbcr"}
    from rasterio.windows import Window

    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, side, 512):
            h = min(512, side - row)
            ys = (np.arange(row, row + h) / 256.0)[:, None]
            xs = (np.arange(side) / 256.0)[None, :]
            y0, x0 = ys.astype(int), xs.astype(int)
            fy, fx = (ys - y0)[..., None], (xs - x0)[..., None]
            c = (coarse[y0, x0] * (1 - fy) * (1 - fx) + coarse[y0 + 1, x0] * fy * (1 - fx)
                 + coarse[y0, x0 + 1] * (1 - fy) * fx + coarse[y0 + 1, x0 + 1] * fy * fx)
            c += rng.normal(0, 12, (h, side, 1)) + 25 * np.sin(xs * 9 + ys * 5)[..., None]
            for _ in range(side // 64):
                cy, cx, r = rng.integers(0, h), rng.integers(0, side), int(rng.integers(4, 40))
                y0_, x0_ = max(0, cy - r), max(0, cx - r)
                yy, xx = np.ogrid[y0_:min(h, cy + r), x0_:min(side, cx + r)]
                patch = c[y0_:cy + r, x0_:cx + r]
                patch[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, 256, 3)
            dst.write(np.clip(c, 0, 255).astype(np.uint8).transpose(2, 0, 1),
                      window=Window(0, row, side, h))
    return path


def model_rate(run: Any, batch: int, device: str, side: int = 256, per_input: int = 1,
               repeats: int = 10) -> float:
    """Tiles/s of `run` on one batch of `batch` tiles of random pixels, as inputs of `side`
    px holding `per_input` tiles each (median of `repeats`, after 2 warm-ups)."""
    import torch

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    n = max(1, batch // per_input)
    x = np.random.default_rng(0).integers(0, 256, (n, side, side, 3), dtype=np.uint8)
    batch = n * per_input
    run(x)
    run(x)
    times = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        run(x)
        sync()
        times.append(time.perf_counter() - t)
    return batch / statistics.median(times)


def runner(device: str, dtype: str) -> tuple[Any, int, int]:
    """The default model's graph as indexing runs it (the block graph for a block recipe) on
    `device` at `dtype`, its input side and the tiles an input holds."""
    import torch

    from tilesearch.models.device import cuda_runner

    net, side, per_input = network_module()
    if device == "cuda":
        return cuda_runner(net, dtype), side, per_input

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(batch)).numpy()

    return run, side, per_input


def _with(graph: tuple[Any, int, int], batch: int, device: str) -> tuple[Any, ...]:
    """`model_rate`'s arguments for a `runner` result."""
    run, side, per_input = graph
    return run, batch, device, side, per_input


def cpu_reference() -> Any:
    """CPU float32 fingerprints: OpenVINO where installed, else torch."""
    from tilesearch.models import available_runtimes, load_model

    rt = "openvino" if "openvino" in available_runtimes() else "torch"
    return load_model(runtime=rt, device="cpu")


def run(data: Path, device: str, batch: int, readers: int, n_recall: int) -> dict[str, Any]:
    import torch

    from tilesearch import api
    from tilesearch.models import load_model

    res: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "batch": batch, "readers": readers, "torch": torch.__version__,
        "cpu_cores": os.cpu_count(), "data": str(data)}
    res["model_only_tiles_per_s"] = {
        dtype: round(model_rate(*_with(runner(device, dtype), batch, device)), 1)
        for dtype in (("float16", "bfloat16", "float32") if device == "cuda" else ("float32",))}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        report = api.index([data], Path(tmp) / "gpu.tiles", device=device, batch_size=batch,
                           readers=readers)
        seconds = time.perf_counter() - start
    res["end_to_end_tiles"] = report.tiles_added
    res["end_to_end_seconds"] = round(seconds, 2)
    res["end_to_end_tiles_per_s"] = round(report.tiles_added / seconds, 1)
    res["indexing_only_tiles_per_s"] = round(report.tiles_per_second, 1)
    tiles = real_tiles(data, n_recall)
    gpu_model, cpu_model = load_model(device=device), cpu_reference()
    got = embed(gpu_model.embed, tiles, batch)
    ref = embed(cpu_model.embed, tiles)
    res["recall_at_10_vs_cpu"] = round(recall_at_k(ref, got), 4)  # image queries: tile by tile
    res["recall_tiles"] = len(tiles)
    if block_tiles(gpu_model.identity.recipe) > 1:  # what the store holds: block fingerprints
        blocks = real_blocks(data, n_recall // 4)
        got = embed(gpu_model.for_blocks(STRIDE).embed, blocks, max(1, batch // 4))
        ref = embed(cpu_model.for_blocks(STRIDE).embed, blocks, 16)
        res["recall_at_10_vs_cpu_blocks"] = round(recall_at_k(ref, got), 4)
        res["recall_blocks"] = len(blocks)
    res["targets"] = {"end_to_end_tiles_per_s": 5000, "recall_at_10_vs_cpu": 0.99}
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--synthetic", type=int, default=16384,
                    help="side in px of the synthetic ortho used where --data is missing")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--readers", type=int, default=min(8, os.cpu_count() or 1),
                    help="reader threads feeding the GPU (the CLI's default on a GPU)")
    ap.add_argument("--recall-tiles", type=int, default=2000)
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                    help="cpu: a dry run of the script on the CPU")
    ap.add_argument("--out", type=Path, default=None, help="also write gpu.json here")
    args = ap.parse_args(argv)
    from tilesearch.models.device import cuda_available

    if args.device == "cuda" and not cuda_available():
        print("no CUDA device: this check needs a GPU that torch can see; nothing measured")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if not data.exists():
            t = time.perf_counter()
            data = synthetic_ortho(Path(tmp) / "synthetic.tif", args.synthetic)
            print(f"{args.data} not found: wrote a synthetic {args.synthetic} px ortho in "
                  f"{time.perf_counter() - t:.0f} s", flush=True)
        res = run(data, args.device, args.batch, args.readers, args.recall_tiles)
    print(json.dumps(res, indent=1))
    e2e, recall = res["end_to_end_tiles_per_s"], res["recall_at_10_vs_cpu"]
    print(f"{res['device']}: end to end {e2e:.0f} tiles/s (target 5000), model only "
          f"{res['model_only_tiles_per_s']}, recall@10 against the CPU {recall:.4f} "
          f"(blocks: {res.get('recall_at_10_vs_cpu_blocks', '-')}; target 0.99)")
    from benchmarks.common.results import save

    save(res, "gpu.json")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu.json").write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
