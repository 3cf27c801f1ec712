"""How indexing on Ray scales: 1 against 2 workers on a local Ray cluster, same run.

    python -m benchmarks.studies.cluster [--data ../shared/data/orthos] [--crop 2304]

Crops the top-left `--crop` px square of each image under `--data` into temporary GeoTIFFs
(17 x 17 = 289 windows per image at 2304 px), then indexes them with the default model on a
local Ray cluster with 1 worker and with 2 workers (one inference thread each; one CPU per
worker), and locally in this process (all cores) for reference. Reports tiles/s and the
2-worker/1-worker ratio, and checks the Ray stores equal the local one (tile ids, fingerprints
within 1e-3). Ray's start-up (about 5-10 s for the actors to import the model) is included in
each run's time, as a user would see it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common.data import ORTHOS
from benchmarks.common.results import save
from tilesearch import api
from tilesearch.raster import find_images
from tilesearch.store import Store

DEFAULT_DATA = ORTHOS


def crop(data: Path, size: int, out: Path) -> list[Path]:
    import rasterio
    from rasterio.windows import Window

    files, _ = find_images([data])
    made = []
    for f in files:
        with rasterio.open(f) as src:
            w = Window(0, 0, min(size, src.width), min(size, src.height))
            profile = {**src.profile, "width": w.width, "height": w.height,
                       "transform": src.window_transform(w), "driver": "GTiff",
                       "compress": "deflate", "tiled": True}
            profile.pop("photometric", None)
            target = out / f"{f.stem}-crop.tif"
            with rasterio.open(target, "w", **profile) as dst:
                dst.write(src.read(window=w))
        made.append(target)
    return made


def _vectors(path: Path) -> tuple[list[tuple[Any, ...]], np.ndarray]:
    with Store.open(path) as s:
        metas = s.tiles(range(s.count))
        return ([(m.tile_id, m.window.col_off, m.window.row_off) for m in metas],
                np.asarray(s.vectors()).copy())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--crop", type=int, default=2304)
    args = ap.parse_args(argv)
    if not args.data.exists():
        print(f"skipped: {args.data} not found")
        return 0
    import ray

    res: dict[str, Any] = {"cpus": len(os.sched_getaffinity(0)), "ray": ray.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images = crop(args.data, args.crop, root)
        local = api.index(images, root / "local.tiles", cluster="local")
        res["local_tiles_per_s"] = round(local.tiles_per_second, 1)
        res["tiles"] = local.tiles_added
        ref_rows, ref = _vectors(root / "local.tiles")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            for n in (1, 2):
                report = api.index(images, root / f"ray{n}.tiles", cluster="ray", workers=n)
                rows, vecs = _vectors(root / f"ray{n}.tiles")
                res[f"ray_{n}_workers_tiles_per_s"] = round(report.tiles_per_second, 1)
                res[f"ray_{n}_workers_seconds"] = round(report.seconds, 1)
                res[f"ray_{n}_same_as_local"] = bool(
                    rows == ref_rows and np.allclose(vecs, ref, rtol=1e-3, atol=1e-3))
                print(f"ray, {n} worker(s): {report.tiles_added} tiles in {report.seconds:.1f} s,"
                      f" {report.tiles_per_second:.1f} tiles/s")
        finally:
            ray.shutdown()
    res["scaling_2_vs_1"] = round(res["ray_2_workers_tiles_per_s"]
                                  / res["ray_1_workers_tiles_per_s"], 2)
    res["load_average"] = os.getloadavg()
    print(res)
    save(res, "cluster.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
