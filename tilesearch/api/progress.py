"""Progress bars (tqdm, on stderr) as the callbacks long calls take."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from tilesearch.ingest import Progress


def _bar(total: int, desc: str) -> Any:
    from tqdm import tqdm

    bar = tqdm(total=total, unit="tile", desc=desc, file=sys.stderr, smoothing=0.1,
               dynamic_ncols=True)
    if total == 0:
        bar.close()
    return bar


def progress_bar(total: int) -> Progress:
    """A tqdm progress bar over tile windows (rate and ETA), as a progress callback."""
    bar = _bar(total, "indexing")

    def tick(done: int, failed: int) -> None:
        if failed:
            bar.set_postfix(skipped=failed, refresh=False)
        bar.update(done)
        if bar.n >= bar.total:
            bar.close()

    return tick


def _count_bar(total: int, desc: str) -> Callable[[int], None]:
    bar = _bar(total, desc)

    def tick(n: int) -> None:
        bar.update(n)
        if bar.n >= bar.total:
            bar.close()

    return tick
