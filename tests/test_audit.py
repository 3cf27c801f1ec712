"""Audits (issue 20's counts): a person's answers about random samples of the places found
and of the tiles left below the threshold give the count with an interval that holds."""

import numpy as np
import pytest
from fakes import run_cli

from tilesearch import api
from tilesearch.detect import AuditDraw, Detection, audited_count, draw_audit, lattice
from tilesearch.errors import OptionError, QueryError
from tilesearch.store import Store


def test_the_lattice_is_one_tile_of_each_2x2_block_of_the_grid():
    win = np.array([[0, 0, 0, 256, 256], [0, 128, 0, 256, 256], [0, 256, 0, 256, 256],
                    [0, 256, 128, 256, 256], [0, 256, 512, 256, 256], [1, 0, 0, 300, 300],
                    [1, 344, 244, 256, 256]])
    assert lattice(win).tolist() == [True, False, True, False, True, True, False]


def test_a_draw_takes_best_tiles_of_distinct_places_and_weights_the_tiles_below():
    p = np.array([0.9, 0.95, 0.7, 0.8, 0.1, 0.3, 0.0, 0.05])
    places = [Detection((0, 1), 0.95, 0.925, None), Detection((2, 3), 0.8, 0.75, None)]
    d = draw_audit(places, np.array([4, 5, 6, 7]), p, 0.5, 2, seed=3)
    assert isinstance(d, AuditDraw) and d.places == 2 and sorted(d.found) == [1, 3]
    assert len(d.missed) == 2 and set(d.missed) <= {4, 5, 6, 7}
    mass = p[[4, 5, 6, 7]] + 1e-3
    for t, w in zip(d.missed, d.weights, strict=True):
        assert w == pytest.approx(mass.sum() / (p[t] + 1e-3))  # 1/q: tiles a draw stands for
    assert draw_audit(places, np.array([4, 5, 6, 7]), p, 0.5, 2, seed=3) == d  # seeded
    assert draw_audit([], np.zeros(0, np.int64), p, 0.5, 2).found == ()


def test_the_audited_count_adds_the_real_places_found_and_those_missed():
    assert audited_count(10, [], [(False, 5.0)]) is None  # no place reviewed yet
    assert audited_count(10, [True], []) is None  # nothing below reviewed yet
    c = audited_count(10, [True] * 10, [(False, 50.0)] * 20)
    assert c is not None and c.count == c.low == 10  # every place reviewed, none missed seen
    assert c.high > 10  # missed ones cannot be ruled out by 20 draws
    none_below = audited_count(4, [True, False], [], below=False)
    assert none_below is not None and none_below.missed == 0 and none_below.count == 2
    half = audited_count(100, [True, False] * 10, [(True, 40.0)] + [(False, 40.0)] * 19)
    assert half is not None and half.count == pytest.approx(50 + 2)
    assert half.low < 52 < half.high and half.found_yes == 10 and half.missed_yes == 1


def test_the_interval_holds_the_truth_about_as_often_as_it_says():
    """Simulated surveys with known truth: calibrated scores, a threshold, an audit answered
    by the truth. The 90 % interval must hold the true count in most of them."""
    held = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        p = np.clip(rng.beta(0.3, 3.0, 3000), 0, 1)
        truth = rng.random(3000) < p
        above = np.flatnonzero(p >= 0.5)
        below = np.flatnonzero(p < 0.5)
        places = [Detection((int(t),), float(p[t]), float(p[t]), None) for t in above]
        d = draw_audit(places, below, p, 0.5, 20, seed=seed)
        c = audited_count(len(places), [bool(truth[t]) for t in d.found],
                          [(bool(truth[t]), w) for t, w in zip(d.missed, d.weights,
                                                               strict=True)], seed=seed)
        assert c is not None
        held += c.low <= truth.sum() <= c.high
    assert held >= 48  # 80 % of 60; the benchmark measures it on real fingerprints


def test_an_audit_is_kept_answered_and_refused_where_it_cannot_count(closed_store):
    api.label(closed_store, "a", positives=[1, 3], negatives=[13])  # the lattice: 0 2 12 14
    got = api.audit(closed_store, "a", 3, threshold=0.5)
    found, missed = got.of("found"), got.of("missed")
    places = api.find(closed_store, "a", threshold=0.5).detections
    assert got.threshold == 0.5 and len(found) == got.places == len(places) >= 1
    scored = api.scores(closed_store, "a").probabilities
    best = {max(d.tiles, key=lambda t: scored[t]) for d in places}
    assert {t.tile_id for t in found} == best and sum(t.draws for t in missed) == 3
    with Store.open(closed_store) as s:
        win = s.windows()
    assert all(win[t.tile_id][1] % 256 == 0 and win[t.tile_id][2] % 256 == 0 for t in missed)
    assert not {t.tile_id for t in got.tiles} & {1, 3, 13}  # labelled: known
    result = api.find(closed_store, "a", threshold=0.5)
    assert result.audit is None and "unanswered" in result.audit_note  # nothing answered
    yes = [t.tile_id for t in found]
    no = [t.tile_id for t in missed]
    with pytest.raises(QueryError, match="not in the audit"):
        api.answer_audit(closed_store, "a", present=[23 if 23 not in no else 22, *yes])
    with pytest.raises(QueryError, match="both yes and no"):
        api.answer_audit(closed_store, "a", present=yes, absent=yes)
    api.answer_audit(closed_store, "a", present=yes, absent=no)
    result = api.find(closed_store, "a", threshold=0.5)
    assert result.audit is not None and result.audit_note is None
    n = len(places)  # every place real, no draw below a missed one
    assert result.audit.count == result.audit.low == n < result.audit.high
    assert result.summary()["audited_count"]["count"] == n
    other = api.find(closed_store, "a", threshold=0.7)
    assert other.audit is None and "drawn at threshold 0.5" in other.audit_note
    api.label(closed_store, "a", negatives=[15])
    stale = api.find(closed_store, "a", threshold=0.5)
    assert stale.audit is None and "changed since the audit was drawn" in stale.audit_note
    api.remove_label_set(closed_store, "a")
    with Store.open(closed_store) as s:
        assert s.audit("a") is None  # the audit goes with its label set
    with pytest.raises(QueryError, match="has no audit"):
        api.answer_audit(closed_store, "b", present=[3])
    with pytest.raises(OptionError, match="from 1 to 1000"):
        api.audit(closed_store, "a", 0)


def test_the_cli_draws_answers_and_counts_an_audit(closed_store, capsys, monkeypatch,
                                                   tmp_path):
    api.label(closed_store, "a", positives=[1, 3], negatives=[13])
    code, _, err = run_cli(["audit", closed_store, "a"], capsys, monkeypatch)
    assert code == 2 and "has no audit yet" in err
    sheet = tmp_path / "audit.png"
    code, out, err = run_cli(["audit", closed_store, "a", "--draw", 2, "--sheet", sheet],
                             capsys, monkeypatch)
    assert code == 0 and "0 of " in out and "to review (best tile of a place found)" in out
    assert sheet.stat().st_size > 0 and "wrote" in err
    with Store.open(closed_store) as s:
        got = s.audit("a")
    assert got is not None
    args = ["audit", closed_store, "a"]
    for t in got.tiles:
        args += ["--yes" if t.kind == "found" else "--no", t.tile_id]
    code, out, _ = run_cli(args, capsys, monkeypatch)
    n = got.places
    assert code == 0 and f"audited count {n}.0" in out
    code, out, _ = run_cli(["find", closed_store, "a"], capsys, monkeypatch)
    assert code == 0 and f"audited count {n}.0" in out
    code, _, err = run_cli(["audit", closed_store, "a", "--draw", 2, "--yes", 3], capsys,
                           monkeypatch)
    assert code == 2 and "draw an audit first" in err
