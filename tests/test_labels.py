"""Label sets kept in the store (issue 20's first part): named, listed, removed, exported as
GeoJSON, kept across a reopen, a rebuilt search index and a kill while labelling."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakes import run_cli

from tilesearch import api
from tilesearch.errors import QueryError
from tilesearch.store import Store

ROOT = Path(__file__).resolve().parents[1]


def test_a_label_set_is_made_changed_listed_and_removed(closed_store):
    assert api.label_sets(closed_store) == []  # a store made before label sets existed
    s = api.label(closed_store, "pools", positives=[3, 7], negatives=[12])
    assert (s.positives, s.negatives) == ((3, 7), (12,))
    s = api.label(closed_store, "pools", positives=[12], negatives=[7], unlabel=[3])
    assert (s.positives, s.negatives) == ((12,), (7,))  # a tile marked again takes its mark
    api.label(closed_store, "trees", positives=[1])
    assert [x.name for x in api.label_sets(closed_store)] == ["pools", "trees"]
    with Store.open(closed_store) as store:  # kept in the store, read-only opens see it
        assert store.label_set("pools").positives == (12,)
    assert api.remove_label_set(closed_store, "pools") == 2
    assert [x.name for x in api.label_sets(closed_store)] == ["trees"]


def test_labels_name_tiles_so_they_survive_a_rebuilt_index(closed_store):
    api.label(closed_store, "pools", positives=[5, 6])
    api.build_index(closed_store, codec="SQ8", force=True)
    api.build_index(closed_store, codec="SQ8", force=True, rebuild=True)
    assert api.label_sets(closed_store)[0].positives == (5, 6)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "pools", "positives": [999]}, "no tile with id 999"),
    ({"name": "pools", "positives": [-1]}, "no tile with id -1"),
    ({"name": "pools", "positives": [2], "negatives": [2]}, "both positive and negative"),
    ({"name": "../x", "positives": [2]}, "cannot name a label set"),
    ({"name": "", "positives": [2]}, "cannot name a label set"),
])
def test_bad_labels_are_refused_and_change_nothing(closed_store, kwargs, message):
    api.label(closed_store, "pools", positives=[1])
    with pytest.raises(QueryError, match=message):
        api.label(closed_store, **kwargs)
    assert [(x.name, x.positives, x.negatives) for x in api.label_sets(closed_store)] == [
        ("pools", (1,), ())]


def test_an_unknown_label_set_names_the_ones_there_are(closed_store):
    api.label(closed_store, "pools", positives=[1])
    with Store.open(closed_store) as store, pytest.raises(QueryError, match=r"no label set 'trees' "
                                                                      r"\(label sets: pools\)"):
        store.label_set("trees")
    with pytest.raises(QueryError, match="no label set 'trees'"):
        api.remove_label_set(closed_store, "trees")


def test_the_cli_labels_lists_exports_and_removes(closed_store, capsys, monkeypatch):
    code, out, _ = run_cli(["label", closed_store, "pools", "-p", 3, "-p", 4, "-n", 15], capsys,
                           monkeypatch)
    assert code == 0 and out.startswith("pools: 2 positive (3, 4), 1 negative (15)")
    code, out, _ = run_cli(["label", closed_store], capsys, monkeypatch)
    assert out.strip() == "pools: 2 positive, 1 negative"
    code, out, _ = run_cli(["label", closed_store, "pools", "--geojson", "-"], capsys, monkeypatch)
    gj = json.loads(out)
    assert gj["type"] == "FeatureCollection" and gj["label_set"] == "pools"
    assert sorted((f["properties"]["tile_id"], f["properties"]["label"])
                  for f in gj["features"]) == [(3, "positive"), (4, "positive"),
                                              (15, "negative")]
    code, _, err = run_cli(["label", closed_store, "nothing"], capsys, monkeypatch)
    assert code == 2 and "no label set 'nothing' (label sets: pools)" in err
    code, out, _ = run_cli(["label", closed_store, "pools", "--remove"], capsys, monkeypatch)
    assert code == 0 and "removed label set 'pools' (3 labels)" in out


def test_a_kill_while_labelling_leaves_whole_labels(closed_store):
    """Each change is one transaction: killed at any moment, the set holds the tiles labelled
    before the kill, every one of them whole."""
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
              "from tilesearch import api\n"
              "print('ready', flush=True)\n"
              "for i in range(10**6):\n"
              f"    api.label({str(closed_store)!r}, 'pools', positives=[i % 24], negatives=[])\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert api.check(closed_store).ok
    sets = api.label_sets(closed_store)
    assert [s.name for s in sets] == ["pools"] and sets[0].positives
    assert set(sets[0].positives) <= set(range(24)) and not sets[0].negatives
    api.label(closed_store, "pools", positives=[0])  # and the store takes labels again


def _geojson(tmp_path, features, **extra):
    f = tmp_path / "marked.geojson"
    f.write_text(json.dumps({"type": "FeatureCollection", "features": features, **extra}))
    return f


def test_labels_from_geojson_points_and_polygons(closed_store, tmp_path):
    with Store.open(closed_store) as store:
        t4, t9 = store.tile(4), store.tile(9)
    lon, lat = t9.lonlat  # a small square around tile 9's centre: no other centre inside
    shrink = [lon - 1e-7, lat - 1e-7, lon + 1e-7, lat + 1e-7]
    ring = [[shrink[0], shrink[1]], [shrink[2], shrink[1]], [shrink[2], shrink[3]],
            [shrink[0], shrink[3]], [shrink[0], shrink[1]]]
    f = _geojson(tmp_path, [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(t4.lonlat)},
         "properties": {}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
         "properties": {"label": "negative"}}])
    s = api.label(closed_store, "pools", from_geojson=f)
    assert s.positives == (4,) and s.negatives == (9,)


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not a readable GeoJSON file"),
    ("[1, 2]", "is not a GeoJSON object"),
    (json.dumps({"type": "FeatureCollection", "features": 5}), "no list of features"),
    (json.dumps({"type": "FeatureCollection", "features": [], "crs": {
        "type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}}}),
     "is in urn:ogc:def:crs:EPSG::32633; tilesearch reads GeoJSON in lon/lat"),
    (json.dumps({"type": "Point", "coordinates": [0.0, 0.0]}), "no indexed tile covers"),
    (json.dumps({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}), "marks no tile"),
    (json.dumps({"type": "Feature", "geometry": {"type": "Point", "coordinates": [1]},
                 "properties": {}}), "not a geometry"),
])
def test_bad_geojson_labels_are_one_line_and_change_nothing(closed_store, tmp_path, content,
                                                             message):
    from tilesearch.errors import InputError

    f = tmp_path / "bad.geojson"
    f.write_text(content)
    with pytest.raises(InputError, match=message):
        api.label(closed_store, "pools", from_geojson=f)
    assert api.label_sets(closed_store) == []
