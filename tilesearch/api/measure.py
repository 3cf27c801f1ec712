"""The API's measures of retrieval quality: labelled folders and the label-free check."""

from __future__ import annotations

from pathlib import Path

from tilesearch.api.progress import _count_bar
from tilesearch.errors import QueryError
from tilesearch.options import (
    ALPHA,
    TILE_SIZE,
)
from tilesearch.quality import RetrievalReport, TransformReport
from tilesearch.retrieval import (
    DEFAULT_METRIC,
    default_raw_weight,
)
from tilesearch.store import Store


def evaluate(folder: str | Path, *, model: str | None = None,
             weights: str | Path | None = None, runtime: str = "auto",
             metric: str = DEFAULT_METRIC, expand: int = 0, alpha: float = ALPHA,
             tile_size: int = TILE_SIZE, recipe: str | None = None, augment: int = 0,
             raw_weight: float | None = None, progress: bool = False) -> RetrievalReport:
    """Retrieval quality on a labelled ``<class>/<image>`` folder: every image queries all the
    others, relevant = same class; mAP over all ranks and precision@1/5/10. `augment` = k > 0
    evaluates database-side augmentation over k neighbours (as `build_index(augment=k)`),
    `raw_weight` the mix with the raw distance (as `search(raw_weight=)`; None: as searches
    default to, `retrieval.RAW_WEIGHT` with augmentation, else 0)."""
    from tilesearch import quality as ev
    from tilesearch.ann import augment_set
    from tilesearch.retrieval import RAW_WEIGHT, blend, check_raw_weight

    if raw_weight is None:
        raw_weight = RAW_WEIGHT if augment else 0.0

    if augment and metric != "cosine":
        raise QueryError("augmentation compares unit vectors: use the cosine metric")
    check_raw_weight(raw_weight, metric)

    paths, labels = ev.labelled_images(folder)
    from tilesearch import api  # its loaders, looked up when called (tests replace them)

    fp = api.load_fingerprinter(model, weights=weights, runtime=runtime, tile_size=tile_size,
                                recipe=recipe)
    tiles = ev.read_resized(paths, tile_size)
    tick = _count_bar(len(tiles), "fingerprinting") if progress else None
    raw = ev.embed_all(fp, tiles, progress=tick)
    vectors = augment_set(raw, augment, alpha) if augment else raw
    dist = ev.expanded_distances(vectors, metric, expand, alpha)
    if raw_weight and (augment or expand):
        dist = blend(ev.pairwise_distances(raw, "cosine"), dist, raw_weight)
    return ev.retrieval_metrics(dist, labels, metric)


def robustness(store: str | Path, *, samples: int = 100, seed: int = 0,
                     metric: str = DEFAULT_METRIC, weights: str | Path | None = None,
                     runtime: str = "auto", raw_weight: float | None = None,
                     progress: bool = False) -> TransformReport:
    """Label-free check: transformed copies of `samples` random indexed tiles query the store;
    how often does the source tile come back at rank 1 and in the top 10? `raw_weight` as
    for `search`, with the same default (it matters on an augmented store)."""
    from tilesearch import quality as ev

    with Store.open(store) as s:
        from tilesearch import api  # as above

        fp = api.store_fingerprinter(s, weights=weights, runtime=runtime)
        n = min(samples, s.count) * (len(ev.TRANSFORMS) + 1)
        tick = _count_bar(n, "fingerprinting") if progress else None
        weight = default_raw_weight(s) if raw_weight is None else raw_weight
        return ev.robustness(s, fp, samples=samples, seed=seed, metric=metric,
                                  raw_weight=weight, progress=tick)
