import json

import pytest
from conftest import write_geotiff, write_png

from tilesearch.demo import run_demo, sample_data


def test_demo_writes_sheets_and_geojson(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_geotiff(data / "a.tif", 640, 512, crs="EPSG:32633", seed=4)
    write_geotiff(data / "b.tif", 512, 512, crs="EPSG:3857", seed=5)
    write_png(data / "c.png", 1024, 1024, seed=6)  # most tiles, but no place on a map
    lines: list[str] = []
    written = run_demo(tmp_path / "out", data=data, queries=2, k=3, echo=lines.append)
    assert sorted(p.suffix for p in written) == [".geojson", ".geojson", ".png", ".png"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in written)
    for gj in (p for p in written if p.suffix == ".geojson"):
        doc = json.loads(gj.read_text())
        assert doc["type"] == "FeatureCollection"
        assert doc["features"][0]["properties"]["role"] == "query"  # queries are placed
    assert any(line.startswith("query tile") for line in lines)
    again = run_demo(tmp_path / "out", data=data, queries=2, k=3, echo=lines.append)
    assert [p.name for p in again] == [p.name for p in written]  # same seed, same queries
    assert "3 already done" in " ".join(lines)


def test_sample_data_is_the_deepforest_folder():
    pytest.importorskip("rasterio")
    try:
        data = sample_data()
    except Exception as exc:  # deepforest not installed: the message says how to get it
        assert "pip install --no-deps deepforest==2.1.0" in str(exc)
        return
    assert (data / "OSBS_029.tif").is_file()
