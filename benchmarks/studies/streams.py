"""OpenVINO streams: one inference request using every thread (the LATENCY hint) against one
stream a thread (THROUGHPUT), a batch split in halves or in small chunks; end to end and model
only, interleaved in one run.

    python -m benchmarks.studies.streams [--image ORTHO] [--rounds 3] [--crop PX]

With one request on all threads, every layer is a parallel loop whose threads meet at a
barrier: when the reading thread (decoding the next tiles) takes a core, the other inference
thread waits too. With one stream a thread, a batch is split over independent requests and a
busy core slows only its own stream; but split in halves, the stream that finishes first waits
for the other at the end of each batch. Split in chunks of a few tiles taken by whichever stream
is free, the slowed stream just takes fewer chunks; and with the next batch's chunks started
while the last ones of a batch run (`Fingerprinter.embed_batches`), no stream waits at a
batch's end. Each round runs, for every setting (in
turn, the order reversed every other round), `api.index` on the image into a new store
(seconds from the call to its return) and the model alone on the same tiles in memory; prints
each round, the medians, and per round the end-to-end / model-only ratio and the end-to-end
speed against halves. The setting taken is in `tilesearch.models.runtime`
(`STREAM_MIN_BATCH`, `STREAM_CHUNK`, `embed_batches`).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common.indexing import (
    DEFAULT_IMAGE,
    ceiling,
    end_to_end,
    image_for,
    model_batches,
)
from benchmarks.common.results import save
from tilesearch import load_fingerprinter
from tilesearch.models import runtime

NEVER = 10 ** 9
SETTINGS = {
    "one request, all threads": (NEVER, NEVER, False),
    "one stream a thread, halves": (runtime.STREAM_MIN_BATCH, NEVER, False),
    "chunks of 8, a batch at a time": (runtime.STREAM_MIN_BATCH, 8, False),
    "chunks of 8, the next batch ahead": (runtime.STREAM_MIN_BATCH, 8, True),
}
"""Setting -> (the smallest batch split over streams, the most tiles a chunk, whether the next
batch starts before the last one ends); NEVER: never split, or split in one part a stream."""
BASELINE = "one stream a thread, halves"


_STREAMED = runtime.CompiledFingerprinter.embed_batches


def _run_ahead(ahead: bool) -> None:
    """Indexing and the ceiling feed the model through `embed_batches` only where the
    fingerprinter has one: without it, a batch at a time (`embed`)."""
    cls: Any = runtime.CompiledFingerprinter
    cls.embed_batches = _STREAMED if ahead else None


def run(image: Path, rounds: int) -> dict[str, Any]:
    res: dict[str, Any] = {name: {"end_to_end": [], "model_only": []} for name in SETTINGS}
    taken = runtime.STREAM_MIN_BATCH, runtime.STREAM_CHUNK
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for i in range(rounds):
                order = list(SETTINGS.items())
                for name, (min_batch, chunk, ahead) in order if i % 2 == 0 else order[::-1]:
                    runtime.STREAM_MIN_BATCH, runtime.STREAM_CHUNK = min_batch, chunk
                    _run_ahead(ahead)
                    fp = load_fingerprinter(None, runtime="openvino")
                    model, batches, tiles = model_batches(image, fp)
                    model.embed(batches[0])
                    res[name]["model_only"].append(ceiling(model, batches, tiles))
                    res[name]["end_to_end"].append(
                        end_to_end(image, "openvino", Path(tmp))[0])
        finally:  # the settings taken, as the package has them
            runtime.STREAM_MIN_BATCH, runtime.STREAM_CHUNK = taken
            _run_ahead(True)
    base = res[BASELINE]["end_to_end"]
    for r in res.values():
        r["ratio"] = [e / m for e, m in zip(r["end_to_end"], r["model_only"], strict=True)]
        r["vs_halves"] = [e / b for e, b in zip(r["end_to_end"], base, strict=True)]
        r["median"] = {k: statistics.median(r[k]) for k in (
            "end_to_end", "model_only", "ratio", "vs_halves")}
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
        m = r["median"]
        print(f"  {name:33s} end to end {' '.join(f'{v:6.1f}' for v in r['end_to_end'])}"
              f" | model only {' '.join(f'{v:6.1f}' for v in r['model_only'])} | medians "
              f"{m['end_to_end']:.1f} / {m['model_only']:.1f} tiles/s; end to end / model "
              f"only in the same round, median {m['ratio']:.3f}; end to end against halves "
              f"in the same round, median {m['vs_halves']:.2f}x")
    save(res, "streams.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
