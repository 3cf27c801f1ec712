"""Find-all outputs GIS users open (issue 20): detections as GeoJSON, GeoPackage and CSV,
counts per polygon with their uncertainty (and a CSV), and a score heatmap per image as a
Cloud-Optimised GeoTIFF georeferenced like the image; a failed export writes nothing."""

import csv
import io
import json

import numpy as np
import pytest
from fakes import run_cli

from tilesearch import api, outputs
from tilesearch.errors import InputError
from tilesearch.store import Store


@pytest.fixture
def found(closed_store):
    api.label(closed_store, "a", positives=[0, 1, 2, 3], negatives=[12, 13, 14, 15])
    scored = api.scores(closed_store, "a")
    return closed_store, scored, api.find(closed_store, "a", threshold=0.0, scored=scored)


def test_detections_are_written_as_geojson_csv_and_geopackage(found, tmp_path):
    pyogrio = pytest.importorskip("pyogrio")
    _, _, result = found
    gj = json.loads(outputs.write_detections(result, tmp_path / "p.geojson").read_text())
    assert gj["count"] == result.count and len(gj["features"]) == result.count
    rows = list(csv.DictReader(io.StringIO(
        outputs.write_detections(result, tmp_path / "p.csv").read_text())))
    assert len(rows) == result.count and rows[0]["rank"] == "1"
    assert sorted(int(t) for r in rows for t in r["tiles"].split()) == sorted(
        t for d in result.detections for t in d.tiles)
    gpkg = outputs.write_detections(result, tmp_path / "p.gpkg")
    meta, _, geoms, fields = pyogrio.raw.read(gpkg)
    assert len(geoms) == result.count and "EPSG:4326" in meta["crs"]
    assert list(meta["fields"][:3]) == ["rank", "max_score", "mean_score"]
    assert fields[0][0] == 1
    with pytest.raises(InputError, match=r"\.geojson, \.gpkg or \.csv"):
        outputs.write_detections(result, tmp_path / "p.shp")


def test_counts_per_polygon_carry_the_same_correction(found, tmp_path):
    from tilesearch.retrieval import load_regions

    _, _, result = found
    centre = result.detections[0].centre
    box = [[centre[0] - 0.01, centre[1] - 0.01], [centre[0] + 0.01, centre[1] - 0.01],
           [centre[0] + 0.01, centre[1] + 0.01], [centre[0] - 0.01, centre[1] + 0.01]]
    far = [[p[0] + 1, p[1]] for p in box]
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "here"},
         "geometry": {"type": "Polygon", "coordinates": [[*box, box[0]]]}},
        {"type": "Feature", "properties": {"name": "there"},
         "geometry": {"type": "Polygon", "coordinates": [[*far, far[0]]]}}]}
    f = tmp_path / "districts.geojson"
    f.write_text(json.dumps(fc))
    counts = result.count_by(load_regions(f))
    assert [(c.name, c.count) for c in counts] == [("here", result.count), ("there", 0)]
    assert counts[0].expected == result.expected_count
    text = outputs.write_regions(counts, tmp_path / "c.csv").read_text()
    assert text.splitlines()[0] == "region,count,expected,expected_low,expected_high"
    line = tmp_path / "line.geojson"
    line.write_text(json.dumps({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}))
    with pytest.raises(InputError, match="a LineString, not a polygon"):
        load_regions(line)


def test_the_heatmap_is_a_cog_georeferenced_like_the_image(found, tmp_path):
    import rasterio

    store, scored, _ = found
    files = api.heatmaps(store, scored, tmp_path / "heat")
    assert sorted(f.name for f in files) == ["a.heatmap.tif", "b.heatmap.tif"]
    with Store.open(store) as s:
        info = s.image_by_id(s.tile(0).image_id)["info"]
        grid, cell = outputs.heatmap_cells(s, s.tile(0).image_id, scored.heat)
        t5 = s.tile(5)
    with rasterio.open(tmp_path / "heat" / "a.heatmap.tif") as src:
        assert src.crs.to_string() == "EPSG:32633" and src.nodata == -1
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert (src.width, src.height) == (-(-info.width // cell), -(-info.height // cell))
        assert src.transform.a == pytest.approx(info.transform[1] * cell)
        assert (src.transform.c, src.transform.f) == pytest.approx(
            (info.transform[0], info.transform[3]))
        data = src.read(1)
    np.testing.assert_array_equal(data, grid)
    assert data[0, 0] == 1.0  # tile 0 is a labelled positive: its cell shows the label
    r, c = t5.window.row_off // cell, t5.window.col_off // cell
    assert data[r, c] >= scored.heat[5] - 1e-6  # the best of the tiles covering the cell
    assert (data[data != -1] >= 0).all() and (data <= 1).all()


def test_the_cli_writes_every_output_and_counts_by_polygon(found, tmp_path, capsys,
                                                           monkeypatch):
    pytest.importorskip("pyogrio")
    store, _, result = found
    c = result.detections[0].centre
    ring = [[c[0] - 1, c[1] - 1], [c[0] + 1, c[1] - 1], [c[0] + 1, c[1] + 1], [c[0] - 1, c[1] + 1],
            [c[0] - 1, c[1] - 1]]
    (tmp_path / "d.geojson").write_text(json.dumps({"type": "Feature", "properties": {
        "name": "all"}, "geometry": {"type": "Polygon", "coordinates": [ring]}}))
    code, out, err = run_cli(["find", store, "a", "--threshold", 0.0, "--out",
                              tmp_path / "p.gpkg", "--heatmap", tmp_path / "h", "--count-by",
                              tmp_path / "d.geojson", "--counts-csv", tmp_path / "c.csv"],
                             capsys, monkeypatch)
    assert code == 0, err
    assert (tmp_path / "p.gpkg").is_file() and (tmp_path / "h" / "a.heatmap.tif").is_file()
    assert f"  all: {result.count}" in out and "wrote 2 heatmap(s)" in err
    assert (tmp_path / "c.csv").read_text().splitlines()[1].startswith(f"all,{result.count},")


@pytest.mark.parametrize("args, message", [
    (["--out", "{t}/p.shp"], "write .geojson, .gpkg or .csv"),
    (["--out", "{t}/no/p.csv"], "does not exist"),
    (["--counts-csv", "{t}/c.csv"], "needs --count-by POLYGONS"),
    (["--count-by", "{t}/missing.geojson"], "not a readable GeoJSON file"),
    (["--heatmap", "{t}/file.txt"], "is a file"),
])
def test_bad_outputs_are_one_line_and_write_nothing(found, tmp_path, capsys, monkeypatch,
                                                    args, message):
    store = found[0]
    (tmp_path / "file.txt").write_text("x")
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run_cli(["find", store, "a", *[a.format(t=tmp_path) for a in args]],
                           capsys, monkeypatch)
    assert code == 2 and message in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
