"""Find all on a store whose full fingerprints were dropped (`build-index --drop-full`):
every tile is still scored, from the search index's codes, as it would be in full."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_ann import IDENTITY, add_image, clustered

from tilesearch import ann, api
from tilesearch.store import Store, unit


def _store(path: Path) -> Store:
    s = Store.create(path, IDENTITY)
    add_image(s, "/a.tif", clustered(3000, 1))
    return s


@pytest.mark.parametrize("codec", ["PCA16,SQ8", "PCA12,SQ8,Refine(SQ8)"])
def test_dropped_tiles_are_scored_from_their_codes(tmp_path: Path, codec: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ann.spec, "IVF_ABOVE", 1000)  # the refining codec: an IVF index too
    full = _store(tmp_path / "full.tiles")
    x = unit(full.vectors())
    order = np.argsort(-(x @ x[0]))
    pos, neg = order[1:11].tolist(), order[-10:].tolist()
    full.set_labels("near", pos, neg)
    want = api.scores(full, "near").probabilities
    coded = _store(tmp_path / "coded.tiles")
    coded.set_labels("near", pos[:5], neg[:5])  # labelled before the drop...
    ann.build(coded, codec=codec, force=True, keep_full=False)
    assert coded.full_from == coded.count == 3000
    coded.set_labels("near", pos[5:], neg[5:])  # ... and after: both read from the codes
    got = api.scores(coded, "near").probabilities
    known = want >= 0
    assert (got[known] > 0).all()  # no tile left at 0 for want of a full vector
    assert np.corrcoef(got[known], want[known])[0, 1] > 0.95
    top_want = set(np.argsort(-want)[:100].tolist())
    top_got = set(np.argsort(-got)[:100].tolist())
    assert len(top_want & top_got) >= 80
    found = [{t for d in api.find(s, "near").detections for t in d.tiles} for s in (full, coded)]
    assert len(found[0] & found[1]) >= 0.6 * len(found[0] | found[1]) > 0
    full.close()
    coded.close()


@pytest.mark.parametrize("ivf", [False, True])
def test_products_in_the_codes_space_equal_those_of_the_decoded_fingerprints(
        tmp_path: Path, ivf: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if ivf:
        monkeypatch.setattr(ann.spec, "IVF_ABOVE", 1000)
    s = _store(tmp_path / "s.tiles")
    ann.build(s, codec="PCA16,L2norm,SQ8", force=True, keep_full=False)
    index = ann.cached(s)
    assert index is not None and index.spec.is_ivf == ivf
    w = np.random.default_rng(0).normal(size=s.dim).astype(np.float32)
    dots, sq = index.dots(w, 100, 1300)
    x = index.decode_range(100, 1300)
    assert np.allclose(dots / np.sqrt(sq), x @ w, atol=1e-4)
    assert len(dots) == 1200 and not np.allclose(sq, 1.0)  # the fast path: in 16-d
    with pytest.raises(ValueError, match="not all in the index"):
        index.dots(w, 0, s.count + 1)
    s.close()
