"""Find all in the web app: each label set's scores are kept while its labels and the store
stay as they are, so that moving the threshold slider only re-thresholds (the slow step,
fitting and scoring every tile, runs again only after a label changed); the tile windows and
lon/lat boxes the merging needs are read once per store version. Also the places' outlines
in one image's pixels (the page's map is in pixels) and score heatmaps as PNG overlays."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from tilesearch import api
from tilesearch.detect import FindResult, detection_properties, detections, validation
from tilesearch.errors import QueryError
from tilesearch.outputs import heatmap_cells
from tilesearch.retrieval import SearchFilter, allowed_mask
from tilesearch.store import LabelSet, Store, check_name
from tilesearch.web.errors import NotFound
from tilesearch.web.imagery import encode_png
from tilesearch.web.state import StoreState

SEED = 0
"""The seed of the web app's scores (fits and audits): an audit drawn for another is stale."""
KEPT_SETS = 4
"""Label sets whose scores are kept (one float per tile each)."""
KEPT_RESULTS = 16
"""Find results (threshold, images) and heatmap grids kept per label set."""
RAMP = np.array([[0.0, 49, 54, 149], [0.25, 116, 173, 209], [0.5, 255, 255, 191],
                 [0.75, 244, 109, 67], [1.0, 165, 0, 38]], np.float32)
"""Heatmap colours (score, red, green, blue): blue for unlike, red for like."""
ALPHA_ABOVE, ALPHA_BELOW = 190, 70
"""Heatmap opacity of cells at or above the threshold, and below it."""
MAX_MERGED = 50_000
"""Tiles one find merges into places at most: merging (`detect.groups`) grows with the tiles
passed, and a threshold that passes more tiles than this finds the survey itself; a lower
threshold answers 400 asking for a higher one."""


def label_set(store: Store, name: str) -> LabelSet:
    """The label set `name`: QueryError (400) for a name no set may have, NotFound (404)
    when there is no such set."""
    check_name(name)
    try:
        return store.label_set(name)
    except QueryError:
        known = ", ".join(s.name for s in store.label_sets()) or "none yet"
        raise NotFound(f"no label set {name!r} (label sets: {known}); mark a tile in label "
                       "mode to make one") from None


@dataclass
class Scored:
    """One label set's scores, for the labels and store version they were made from."""

    key: tuple[int, LabelSet]
    scores: api.Scores
    kept: OrderedDict[tuple[Any, ...], Any] = field(default_factory=OrderedDict)


class FindCache:
    """Scores per label set (keyed by the store's generation and the set's labels), with
    the results and heatmap grids made from them. Safe across threads: one lock guards
    the tables, and a label set's scores are computed by one thread while others wait."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sets: OrderedDict[str, Scored] = OrderedDict()
        self._computing: dict[str, threading.Lock] = {}
        self._tables: tuple[int, np.ndarray, np.ndarray] | None = None
        self._tables_lock = threading.Lock()

    def scored(self, state: StoreState, name: str) -> Scored:
        """The current scores of label set `name` (fitted and scored when its labels or the
        store changed since they were made)."""
        store = state.store()
        labels = label_set(store, name)
        if not labels.positives:
            raise QueryError(f"label set {name!r} has no positive tile yet: mark at least one "
                             "tile + (and some tiles that are not it, -) before finding")
        key = (state.generation, labels)
        hit = self._get(name, key)
        if hit is not None:
            return hit
        with self._lock:
            computing = self._computing.setdefault(name, threading.Lock())
        with computing:  # one fit per label set at a time; the others then find it kept
            hit = self._get(name, key)
            if hit is not None:
                return hit
            scores = api.scores(store, name, seed=SEED)
            made = Scored((key[0], scores.labels), scores)
            with self._lock:
                self._sets[name] = made
                self._sets.move_to_end(name)
                while len(self._sets) > KEPT_SETS:
                    self._sets.popitem(last=False)
        return made

    def _get(self, name: str, key: tuple[int, LabelSet]) -> Scored | None:
        with self._lock:
            hit = self._sets.get(name)
            if hit is None or hit.key != key:
                return None
            self._sets.move_to_end(name)
            return hit

    def tables(self, state: StoreState, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Every tile's window and lon/lat box (`Store.windows`, `Store.lonlat_boxes`), read
        once per store generation (and again if they hold fewer than `n` tiles)."""
        with self._tables_lock:
            t = self._tables
            if t is None or t[0] != state.generation or len(t[1]) < n:
                store = state.store()
                t = self._tables = (state.generation, store.windows(), store.lonlat_boxes())
            return t[1], t[2]

    def find(self, state: StoreState, name: str, threshold: float,
             where: SearchFilter | None) -> FindResult:
        """`api.find` of label set `name` at `threshold`, from the kept scores; the audited
        count is read afresh (its answers come from outside the app)."""
        sc = self.scored(state, name)
        rkey = ("find", float(threshold), where)
        result = self._kept(sc, rkey)
        if not isinstance(result, FindResult):
            result = self._find(state, sc, name, threshold, where, rkey)
        audited, note = api.audit_for(state.store(), sc.scores.labels, float(threshold),
                                      sc.scores.seed, where, commands=False)
        return replace(result, audit=audited, audit_note=note)

    def _find(self, state: StoreState, sc: Scored, name: str, threshold: float,
              where: SearchFilter | None, rkey: tuple[Any, ...]) -> FindResult:
        store = state.store()
        probabilities = sc.scores.probabilities
        windows, boxes = self.tables(state, len(probabilities))
        ids = sc.scores.above(threshold, allowed_mask(store, where) if where else None)
        if len(ids) > MAX_MERGED:
            raise QueryError(f"{len(ids):,} tiles score at or above {threshold:g}: raise the "
                             f"threshold (at most {MAX_MERGED:,} tiles are merged into places "
                             "at once)")
        result = FindResult(name, float(threshold), len(ids),
                            detections(store, ids, probabilities, windows=windows, boxes=boxes),
                            validation(sc.scores.fitted, threshold))
        self._keep(sc, rkey, result)
        return result

    def heatmap(self, state: StoreState, name: str, image_id: int) -> tuple[np.ndarray, int]:
        """Image `image_id`'s grid of the best score per stride cell (-1: no tile; labelled
        tiles at their label) and the cell size (`outputs.heatmap_cells`)."""
        state.image(image_id)
        sc = self.scored(state, name)
        rkey = ("heat", image_id)
        kept = self._kept(sc, rkey)
        if kept is not None:
            grid, cell = kept
            return grid, cell
        heat = sc.scores.heat
        windows, _ = self.tables(state, len(heat))
        made = heatmap_cells(state.store(), image_id, heat, windows[:len(heat)])
        self._keep(sc, rkey, made)
        return made

    def suggestions(self, state: StoreState, name: str, n: int) -> list[tuple[int, float]]:
        """Up to `n` tiles to label next (`api.suggestions`) and their probabilities."""
        sc = self.scored(state, name)
        rkey = ("suggest", n)
        kept = self._kept(sc, rkey)
        if kept is None:
            kept = api.suggestions(state.store(), name, n, scored=sc.scores)
            self._keep(sc, rkey, kept)
        p = sc.scores.probabilities
        return [(int(t), float(p[t])) for t in kept]

    def _kept(self, sc: Scored, key: tuple[Any, ...]) -> Any:
        with self._lock:
            if key in sc.kept:
                sc.kept.move_to_end(key)
                return sc.kept[key]
            return None

    def _keep(self, sc: Scored, key: tuple[Any, ...], value: Any) -> None:
        with self._lock:
            sc.kept[key] = value
            while len(sc.kept) > KEPT_RESULTS:
                sc.kept.popitem(last=False)


def pixel_outlines(result: FindResult, windows: np.ndarray, image_id: int,
                   limit: int) -> tuple[dict[str, Any], bool]:
    """The outlines of `result`'s places in image `image_id`, as a GeoJSON FeatureCollection
    whose coordinates are that image's pixel columns and rows (the union of each place's
    tiles there), best first, at most `limit`; and whether places were left out."""
    import shapely
    from shapely.geometry import mapping

    feats: list[dict[str, Any]] = []
    for rank, d in enumerate(result.detections, 1):
        tiles = np.asarray(d.tiles, np.int64)
        tiles = tiles[windows[tiles, 0] == image_id]
        if not len(tiles):
            continue
        if len(feats) == limit:
            return _collection(feats, f"pixels of image {image_id}"), True
        _, col, row, w, h = windows[tiles].T
        geom = shapely.union_all(shapely.box(col, row, col + w, row + h))
        feats.append({"type": "Feature", "geometry": mapping(geom),
                      "properties": {"rank": rank, "max_score": round(d.max_score, 4),
                                     "mean_score": round(d.mean_score, 4),
                                     "n_tiles": len(d.tiles)}})
    return _collection(feats, f"pixels of image {image_id}"), False


def lonlat_outlines(result: FindResult, limit: int) -> tuple[dict[str, Any], bool]:
    """The places' lon/lat outlines (as `FindResult.to_geojson` writes them), best first, at
    most `limit`; and whether places were left out."""
    from shapely.geometry import mapping

    rows = [(i, d) for i, d in enumerate(result.detections) if d.geometry is not None]
    feats = [{"type": "Feature", "geometry": mapping(d.geometry),
              "properties": detection_properties(i, d)} for i, d in rows[:limit]]
    return _collection(feats, "lon/lat (EPSG:4326)"), len(rows) > limit


def _collection(feats: list[dict[str, Any]], space: str) -> dict[str, Any]:
    return {"type": "FeatureCollection", "coordinates": space, "features": feats}


def heatmap_png(grid: np.ndarray, threshold: float | None) -> bytes:
    """The score grid as an RGBA PNG, one pixel a cell: coloured blue (0) to red (1),
    transparent where no tile is, fainter below `threshold`."""
    g = np.clip(grid, 0.0, 1.0)
    rgba = np.zeros((*grid.shape, 4), np.uint8)
    for band in range(3):
        rgba[..., band] = np.interp(g, RAMP[:, 0], RAMP[:, band + 1]).astype(np.uint8)
    above = grid >= (threshold if threshold is not None else 0.0)
    rgba[..., 3] = np.where(grid < 0, 0, np.where(above, ALPHA_ABOVE, ALPHA_BELOW))
    return encode_png(rgba)
