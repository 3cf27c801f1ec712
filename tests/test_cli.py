"""The CLI end to end with the real default model on small synthetic GeoTIFFs."""

import json
import sys

import numpy as np
import pytest
from conftest import write_geotiff, write_png
from fakes import run_cli
from PIL import Image

from tilesearch.cli import main


def run(args, capsys, monkeypatch):
    """`tilesearch ARGS`; returns (exit code, stdout, stderr)."""
    return run_cli(args, capsys, monkeypatch)


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    """A store indexed by the CLI from two GeoTIFFs and a PNG, with the default model."""
    root = tmp_path_factory.mktemp("survey")
    imgs = root / "imgs"
    imgs.mkdir()
    write_geotiff(imgs / "a.tif", 640, 512, crs="EPSG:32633", seed=1, alpha=True)
    write_geotiff(imgs / "b.tif", 512, 512, crs="EPSG:3857", seed=2)
    write_png(imgs / "c.png", 300, 300, seed=3)
    (imgs / "broken.tif").write_text("not a tiff")
    mp = pytest.MonkeyPatch()
    mp.setattr(sys, "argv", ["tilesearch", "index", str(imgs), "--store", str(root / "s.tiles"),
                             "--quiet"])
    main()  # returns normally when something was indexed
    mp.undo()
    return root


def test_index_then_info(survey, capsys, monkeypatch):
    code, out, _ = run(["info", survey / "s.tiles", "--json", "-"], capsys, monkeypatch)
    facts = json.loads(out)
    assert code == 0 and facts["images"] == 3
    assert facts["model"]["name"] == "efficientnet-lite0-multilevel"
    assert facts["model"]["dim"] == 1904
    assert facts["failures"][0]["path"].endswith("broken.tif")
    assert facts["tiles"] > 10 and facts["compression_ratio"] > 1
    code, out, _ = run(["info", survey / "s.tiles"], capsys, monkeypatch)
    assert "efficientnet-lite0" in out and "compression" in out


def test_rerun_skips_done_images(survey, capsys, monkeypatch):
    code, out, err = run(["index", survey / "imgs", "--store", survey / "s.tiles", "-q"],
                         capsys, monkeypatch)
    assert code == 0 and "already indexed, skipped: 3" in out
    assert "broken.tif: not a readable image" in err


def test_search_by_tile_writes_every_output(survey, capsys, monkeypatch):
    out_dir = survey / "out"
    out_dir.mkdir(exist_ok=True)
    code, out, _ = run(["search", survey / "s.tiles", "--tile", 3, "-k", 4, "--allow-overlaps",
                        "--json", out_dir / "r.json", "--geojson", out_dir / "r.geojson",
                        "--csv", out_dir / "r.csv", "--sheet", out_dir / "r.png"],
                       capsys, monkeypatch)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("query: tile 3") and len(lines) == 2 + 4
    res = json.loads((out_dir / "r.json").read_text())
    assert [r["rank"] for r in res["results"]] == [1, 2, 3, 4]
    assert 3 not in [r["tile_id"] for r in res["results"]]
    gj = json.loads((out_dir / "r.geojson").read_text())
    assert gj["type"] == "FeatureCollection" and gj["features"]
    assert Image.open(out_dir / "r.png").size[0] > 4 * 100


def test_search_by_lonlat_and_image(survey, capsys, monkeypatch):
    code, out, _ = run(["search", survey / "s.tiles", "--tile", 0, "--json", "-"],
                       capsys, monkeypatch)
    tile0 = json.loads(out)["query_tile"]
    lon, lat = tile0["lon"], tile0["lat"]
    code, out, _ = run(["search", survey / "s.tiles", "--lonlat", f"{lon},{lat}", "-k", 3,
                        "--json", "-"], capsys, monkeypatch)
    assert code == 0 and json.loads(out)["query_tile"]["tile_id"] == 0

    # an image query with the exact pixels of a stored tile finds that tile at distance ~0
    from tilesearch.raster import open_image
    from tilesearch.tiling import Window

    w = tile0["window"]
    with open_image(tile0["source"]) as src:
        pixels, _ = src.read_block(Window(w["col_off"], w["row_off"], 256, 256))
    Image.fromarray(pixels).save(survey / "q.png")
    code, out, _ = run(["search", survey / "s.tiles", "--image", survey / "q.png", "-k", 2,
                        "--json", "-"], capsys, monkeypatch)
    best = json.loads(out)["results"][0]
    assert code == 0 and best["tile_id"] == 0 and best["distance"] < 1e-2


def test_errors_are_one_line_with_exit_codes(survey, tmp_path, capsys, monkeypatch):
    code, _, err = run(["search", tmp_path, "--tile", 1], capsys, monkeypatch)
    assert code == 2 and "not a tilesearch store" in err and err.count("\n") == 1
    code, _, err = run(["search", survey / "s.tiles", "--tile", 10**6], capsys, monkeypatch)
    assert code == 2 and "no tile 1000000" in err
    code, _, err = run(["search", survey / "s.tiles", "--lonlat", "100,-50"], capsys,
                       monkeypatch)
    assert code == 2 and "no indexed tile covers" in err
    code, _, err = run(["search", survey / "s.tiles", "--lonlat", "x,y"], capsys, monkeypatch)
    assert code == 2 and "LON,LAT" in err
    (tmp_path / "junk.tif").write_text("junk")
    code, _, err = run(["index", tmp_path / "junk.tif", "--store", tmp_path / "new.tiles", "-q"],
                       capsys, monkeypatch)
    assert code == 1 and "junk.tif: not a readable image" in err


def test_other_model_is_refused(survey, tmp_path, capsys, monkeypatch):
    import torch

    from tilesearch.models.resnet18 import ResNet18

    torch.manual_seed(0)
    torch.save(ResNet18().state_dict(), tmp_path / "r18.pth")
    code, _, err = run(["index", survey / "imgs", "--store", survey / "s.tiles", "--model",
                        "resnet18", "--weights", tmp_path / "r18.pth", "-q"], capsys, monkeypatch)
    assert code == 2 and "holds efficientnet-lite0-multilevel fingerprints" in err
    assert "not resnet18" in err


def test_image_query_is_stable(survey):
    import tilesearch

    a = tilesearch.search(survey / "s.tiles", image=survey / "imgs" / "c.png", k=3)
    b = tilesearch.search(survey / "s.tiles", image=survey / "imgs" / "c.png", k=3)
    np.testing.assert_array_equal(a.query.vector, b.query.vector)
    assert [h.tile.tile_id for h in a.hits] == [h.tile.tile_id for h in b.hits]


def test_evaluate_and_robustness_commands(survey, tmp_path, capsys, monkeypatch):
    for cls, seeds in (("fields", (1, 2, 3)), ("blobs", (7, 8, 9))):
        (tmp_path / cls).mkdir()
        for s in seeds:
            write_png(tmp_path / cls / f"{cls}{s}.png", 256, 256, seed=s)
    code, out, _ = run(["evaluate", tmp_path, "--metric", "cosine", "--json",
                        tmp_path / "q.json"], capsys, monkeypatch)
    assert code == 0 and "6 images, 2 classes, cosine" in out
    report = json.loads((tmp_path / "q.json").read_text())
    assert set(report["per_class"]) == {"fields", "blobs"}
    assert 0 < report["overall"]["mAP"] <= 1

    code, out, _ = run(["robustness", survey / "s.tiles", "--samples", 3, "--json",
                        tmp_path / "r.json"], capsys, monkeypatch)
    assert code == 0 and "3 source tiles" in out and "rot90" in out
    rates = json.loads((tmp_path / "r.json").read_text())
    assert rates["samples"] == 3 and rates["rank1"]["flip_lr"] >= 0


def test_dash_is_stdout_for_every_output(survey, capsys, monkeypatch):
    code, out, _ = run(["search", survey / "s.tiles", "--tile", 3, "-k", 3, "--geojson", "-"],
                       capsys, monkeypatch)
    assert code == 0 and json.loads(out)["type"] == "FeatureCollection"
    code, out, _ = run(["search", survey / "s.tiles", "--tile", 3, "-k", 3, "--csv", "-",
                        "--allow-overlaps"],
                       capsys, monkeypatch)
    assert code == 0 and out.splitlines()[0].startswith("rank,tile_id") and len(
        out.splitlines()) == 4
    code, out, _ = run(["info", survey / "s.tiles", "--json", "-"], capsys, monkeypatch)
    assert code == 0 and json.loads(out)["tiles"] > 10

