import json
from pathlib import Path

import pytest
from conftest import write_geotiff, write_png

from tilesearch.demo import SAMPLE_HINT, demo_gsd, run_demo, sample_data


def test_demo_writes_sheets_and_geojson_with_every_hit_on_the_map(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_geotiff(data / "a.tif", 512, 448, crs="EPSG:32633", seed=4, pixel_size=0.5)
    write_geotiff(data / "b.tif", 384, 384, crs="EPSG:3857", seed=5, pixel_size=0.3)
    write_png(data / "c.png", 1024, 1024, seed=6)  # most tiles, but no place on a map
    assert demo_gsd(data) == pytest.approx(0.25)  # the coarsest, a.tif, upsampled 2x at most
    lines: list[str] = []
    written = run_demo(tmp_path / "out", data=data, queries=2, k=3, echo=lines.append)
    assert sorted(p.suffix for p in written) == [".geojson", ".geojson", ".png", ".png"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in written)
    for gj in (p for p in written if p.suffix == ".geojson"):
        features = json.loads(gj.read_text())["features"]
        assert [f["properties"]["role"] for f in features] == ["query"] + ["hit"] * 3
        assert {Path(f["properties"]["source"]).name for f in features} <= {"a.tif", "b.tif"}
    assert "at 0.25 m a pixel" in lines[0]
    assert any(line.startswith("query tile") for line in lines)
    again = run_demo(tmp_path / "out", data=data, queries=2, k=3, echo=lines.append)
    assert [p.name for p in again] == [p.name for p in written]  # same seed, same queries
    assert "3 already done" in " ".join(lines)


def test_demo_without_georeferencing_keeps_native_pixels(tmp_path):
    write_png(tmp_path / "c.png", 512, 512, seed=6)
    assert demo_gsd(tmp_path) is None


def test_sample_data_is_the_deepforest_folder():
    pytest.importorskip("rasterio")
    try:
        data = sample_data()
    except Exception as exc:  # deepforest not installed: the message says how to get it
        assert SAMPLE_HINT in str(exc) and "deepforest==" in SAMPLE_HINT
        return
    assert (data / "test_tiled.tif").is_file()  # the georeferenced aerial the demo queries
