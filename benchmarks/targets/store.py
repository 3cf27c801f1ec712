"""Store size: bytes per tile, and compression against the float32 pixels of the indexed images.

    python -m benchmarks.targets.store STORE [--out benchmarks/results/store.json]

The ratio compares the store's bytes on disk with the images held as float32 RGB
(sum over images of width * height * 3 * 4 bytes), the form a naive pipeline keeps in memory;
the ratio against 8-bit RGB (width * height * 3) is reported too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from benchmarks.common.measure import store_size as measure
from benchmarks.common.results import RESULTS_DIR, save
from tilesearch import TilesearchError
from tilesearch.store import Store

DEFAULT_OUT = RESULTS_DIR / "store.json"


def _table(m: dict[str, Any]) -> str:
    def num(v: Any, fmt: str) -> str:
        return "n/a" if v is None else format(v, fmt)

    rows = [
        ("store", m["store"]),
        ("images / tiles / dim", f"{m['images']} / {m['tiles']:,} / {m['dim']} ({m['model']})"),
        ("store bytes on disk", f"{m['store_bytes']:,}"),
        ("  of which vectors", f"{m['vector_bytes']:,}"),
        ("bytes per tile", num(m["bytes_per_tile"], ",.0f")),
        ("image pixels as float32", f"{m['float32_pixel_bytes']:,}"),
        ("compression vs float32", num(m["ratio_vs_float32"], ",.1f") + "x"),
        ("compression vs uint8", num(m["ratio_vs_uint8"], ",.1f") + "x"),
    ]
    return "\n".join(f"{k:<26}{v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path, help="a store folder made by 'tilesearch index'")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = parser.parse_args(argv)
    try:
        with Store.open(args.store) as store:
            m = measure(store)
    except TilesearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(_table(m))
    save(m, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
