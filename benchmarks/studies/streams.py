"""OpenVINO streams: one inference request using every thread (the LATENCY hint) against one
stream a thread (THROUGHPUT), end to end and model only, interleaved in one run.

    python -m benchmarks.studies.streams [--image ORTHO] [--rounds 3] [--crop PX]

With one request on all threads, every layer is a parallel loop whose threads meet at a
barrier: when the reading thread (decoding the next tiles) takes a core, the other inference
thread waits too. With one stream a thread, a batch is split over independent requests and a
busy core slows only its own stream. Each round runs, for both settings, `api.index` on the
image into a new store (seconds from the call to its return) and the model alone on the same
tiles in memory; prints each round and the medians. The setting taken is in
`tilesearch.models.runtime` (`STREAM_MIN_BATCH`).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common.indexing import DEFAULT_IMAGE, ceiling, end_to_end, image_for, kept_tiles
from benchmarks.common.results import save
from tilesearch import load_fingerprinter
from tilesearch.models import runtime
from tilesearch.options import CPU_BATCH

SETTINGS = {"one request, all threads": 10 ** 9, "one stream a thread": runtime.STREAM_MIN_BATCH}
"""Setting -> the smallest batch split over streams (a huge one: never split)."""


def run(image: Path, rounds: int) -> dict[str, Any]:
    tiles = kept_tiles(image)
    res: dict[str, Any] = {name: {"end_to_end": [], "model_only": []} for name in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for name, min_batch in SETTINGS.items():
                runtime.STREAM_MIN_BATCH = min_batch
                fp = load_fingerprinter(None, runtime="openvino")
                fp.embed(tiles[:CPU_BATCH])
                res[name]["model_only"].append(ceiling(fp, tiles, CPU_BATCH))
                res[name]["end_to_end"].append(end_to_end(image, "openvino", Path(tmp))[0])
    for r in res.values():
        r["median"] = {k: statistics.median(r[k]) for k in ("end_to_end", "model_only")}
        r["median"]["ratio"] = r["median"]["end_to_end"] / r["median"]["model_only"]
    return {"image": str(image), "tiles": len(tiles), "rounds": rounds, "settings": res}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--crop", type=int, default=0)
    args = ap.parse_args(argv)
    with image_for(args.image, args.crop) as image:
        if image is None:
            return 0
        res = run(image, args.rounds)
    print(f"{Path(res['image']).name}: {res['tiles']} tiles, {res['rounds']} rounds")
    for name, r in res["settings"].items():
        print(f"  {name:26s} end to end {' '.join(f'{v:6.1f}' for v in r['end_to_end'])}"
              f" | model only {' '.join(f'{v:6.1f}' for v in r['model_only'])} | medians "
              f"{r['median']['end_to_end']:.1f} / {r['median']['model_only']:.1f} tiles/s, "
              f"ratio {r['median']['ratio']:.3f}")
    save(res, "streams.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
