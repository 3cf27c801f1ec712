"""Indexing speed: tilesearch end to end against the prototype's pipeline and against the
model-only ceiling, all interleaved in one run.

    python -m benchmarks.targets.index [--image ORTHO] [--pairs 3] [--crop PX] [--runtime auto]
        [--recipe R]

One image (default: the quarry orthomosaic of ../shared/data/orthos) is indexed in rounds:
the prototype's pipeline as it ran (`benchmarks.common.prototype`: .npy tiles, torch eager,
batch 1, a dict), then `tilesearch.api.index` as a user runs it (a new store, the model loaded,
every tile written durably; seconds from the call to its return), then the model alone on the
same tiles held in memory as indexing hands them to it (the same fingerprinter, the same
batches: tiles, or 2 x 2 blocks of tiles for the default block recipe; fed through
`embed_batches` as indexing feeds it). The ceiling is measured before the first round and
after each, so each end-to-end run sits between two ceilings; each round gives its ratios, and
the medians are reported. Targets (issue 22): end to end at least
6x the prototype and at least 90 % of the ceiling.

Also: the share of the CPU's float32 peak each pipeline keeps busy (`benchmarks.common.cpu`),
and the pipeline with a model that costs nothing (reading, tiling and storing alone).
`--crop PX` indexes the image's central PX x PX pixels (a quick check).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common.cpu import cpu_peak, macs_per_tile, peak_share
from benchmarks.common.indexing import (
    DEFAULT_IMAGE,
    ceiling,
    end_to_end,
    image_for,
    model_batches,
    network_module,
    read_ceiling,
)
from benchmarks.common.prototype import resnet18, run_prototype
from benchmarks.common.results import save
from tilesearch import load_fingerprinter
from tilesearch.options import CPU_BATCH


def run(image: Path, pairs: int, runtime: str, recipe: str | None = None) -> dict[str, Any]:
    fp = load_fingerprinter(None, runtime=runtime, recipe=recipe)  # what api.index loads
    model, batches, tiles = model_batches(image, fp)
    model.embed(batches[0])  # warm-up: first-call allocations and kernel choices
    proto_net = resnet18()
    with tempfile.TemporaryDirectory() as tmp:
        ceilings = [ceiling(model, batches, tiles)]
        rounds = []
        for _ in range(pairs):
            proto = run_prototype(image, proto_net)
            e2e, n, size = end_to_end(image, runtime, Path(tmp), recipe)
            ceilings.append(ceiling(model, batches, tiles))
            rounds.append({"prototype_tiles_per_s": proto.tiles_per_second,
                           "prototype_tiles": proto.tiles, "prototype_cut_s": proto.cut_s,
                           "prototype_fingerprint_s": proto.fingerprint_s,
                           "end_to_end_tiles_per_s": e2e, "tiles": n,
                           "ceiling_around": ceilings[-2:]})
        reading = read_ceiling(image, fp.identity, Path(tmp))
    for r in rounds:
        r["vs_prototype"] = r["end_to_end_tiles_per_s"] / r["prototype_tiles_per_s"]
        r["vs_ceiling"] = r["end_to_end_tiles_per_s"] / statistics.mean(r["ceiling_around"])
    peak = cpu_peak()
    graph, side, per_input = network_module(fp.identity.recipe)
    macs = {"tilesearch": macs_per_tile(graph, side) // per_input,
            "prototype": macs_per_tile(_nhwc(proto_net))}
    med = {k: statistics.median(r[k] for r in rounds) for k in (
        "end_to_end_tiles_per_s", "prototype_tiles_per_s", "vs_prototype", "vs_ceiling")}
    med["ceiling_tiles_per_s"] = statistics.median(ceilings)
    return {
        "image": str(image), "model": fp.identity.name, "recipe": fp.identity.recipe,
        "runtime": fp.runtime, "batch": CPU_BATCH, "tiles": rounds[0]["tiles"],
        "prototype_tiles": rounds[0]["prototype_tiles"], "rounds": rounds,
        "ceilings": ceilings, "median": med, "store": size,
        "pipeline_without_model_tiles_per_s": reading,
        "cpu": peak, "macs_per_tile": macs,
        "peak_share": {
            "end_to_end": peak_share(macs["tilesearch"], med["end_to_end_tiles_per_s"], peak),
            "ceiling": peak_share(macs["tilesearch"], med["ceiling_tiles_per_s"], peak),
            "prototype": peak_share(macs["prototype"], med["prototype_tiles_per_s"], peak)},
        "targets": {"vs_prototype": 6.0, "vs_ceiling": 0.9},
    }


def _nhwc(net: Any) -> Any:
    """`net` (NCHW float input) taking uint8 NHWC tiles, for the MAC count."""
    import torch

    class Wrap(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x.permute(0, 3, 1, 2).float())

    return Wrap().eval()


def report(res: dict[str, Any]) -> None:
    med, share, c = res["median"], res["peak_share"], res["cpu"]
    print(f"{Path(res['image']).name}: {res['tiles']} tiles; {res['model']} ({res['recipe']}) "
          f"on {res['runtime']}, batch {res['batch']}")
    for i, r in enumerate(res["rounds"], 1):
        print(f"  round {i}: prototype {r['prototype_tiles_per_s']:6.1f} tiles/s "
              f"(cut {r['prototype_cut_s']:.1f} s, fingerprint {r['prototype_fingerprint_s']:.1f}"
              f" s) | end to end {r['end_to_end_tiles_per_s']:6.1f} | ceilings "
              f"{r['ceiling_around'][0]:.1f} / {r['ceiling_around'][1]:.1f} | "
              f"{r['vs_prototype']:.2f}x the prototype, {r['vs_ceiling']:.3f} of the ceiling")
    print(f"  median: end to end {med['end_to_end_tiles_per_s']:.1f} tiles/s, prototype "
          f"{med['prototype_tiles_per_s']:.1f}, ceiling {med['ceiling_tiles_per_s']:.1f}")
    print(f"  speed-up over the prototype {med['vs_prototype']:.2f}x (target >= 6); "
          f"end to end / ceiling {med['vs_ceiling']:.3f} (target >= 0.90)")
    print(f"  CPU: {c['cpu']}, {c['cores']} cores at {c['ghz']:.2f} GHz, {c['simd_lanes']} "
          f"float32 lanes: peak {c['peak_macs_per_s'] / 1e9:.0f} GMAC/s")
    m = res["macs_per_tile"]
    print(f"  MACs per tile: tilesearch {m['tilesearch'] / 1e9:.3f} G, prototype "
          f"{m['prototype'] / 1e9:.3f} G; share of the peak: end to end "
          f"{share['end_to_end']:.1%}, ceiling {share['ceiling']:.1%}, prototype "
          f"{share['prototype']:.1%}")
    print(f"  pipeline with a model that costs nothing: "
          f"{res['pipeline_without_model_tiles_per_s']:.0f} tiles/s; store "
          f"{res['store']['bytes_per_tile'] or 0:.0f} bytes/tile")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    ap.add_argument("--pairs", type=int, default=3, help="rounds of prototype / end to end")
    ap.add_argument("--crop", type=int, default=0, help="index only the central PX x PX")
    ap.add_argument("--runtime", default="auto")
    ap.add_argument("--recipe", default=None,
                    help="the default model's recipe [default: its default, rot4-128-blocks]")
    args = ap.parse_args(argv)
    with image_for(args.image, args.crop) as image:
        if image is None:
            return 0
        res = run(image, args.pairs, args.runtime, args.recipe)
    report(res)
    tag = (f"-crop{args.crop}" if args.crop else "") + (f"-{args.recipe}" if args.recipe else "")
    save(res, f"index{tag}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
