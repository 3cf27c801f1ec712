"""Device selection: cpu here, a clear error for cuda without a GPU, GPU batch sizes."""

import numpy as np
import pytest

from tilesearch.errors import ModelError
from tilesearch.models import device as dv
from tilesearch.models import load_model

no_cuda = pytest.mark.skipif(dv.cuda_available(), reason="a CUDA device is present")


@no_cuda
def test_auto_picks_cpu_and_cuda_says_why_not():
    assert dv.resolve_device("auto") == "cpu"
    assert dv.resolve_device("cpu") == "cpu"
    with pytest.raises(ModelError, match=r"no CUDA device.*--device cpu"):
        dv.resolve_device("cuda")
    with pytest.raises(ModelError, match="no CUDA device"):
        load_model(device="cuda")
    with pytest.raises(ModelError, match="choose one of: auto, cpu, cuda"):
        dv.resolve_device("gpu")


def test_no_driver_means_no_cuda_without_importing_torch(monkeypatch):
    monkeypatch.setattr(dv, "_DRIVER_FILES", ("/nonexistent/nvidiactl",))
    assert not dv.cuda_available() and dv.resolve_device("auto") == "cpu"


def test_cuda_runs_on_torch_only(monkeypatch):
    dv.check_cuda_runtime("auto")
    dv.check_cuda_runtime("torch")
    with pytest.raises(ModelError, match="runs on the torch runtime"):
        dv.check_cuda_runtime("openvino")
    monkeypatch.setenv("TILESEARCH_CUDA_DTYPE", "int4")
    with pytest.raises(ModelError, match="TILESEARCH_CUDA_DTYPE"):
        dv.cuda_dtype()
    monkeypatch.setenv("TILESEARCH_CUDA_DTYPE", "bfloat16")
    assert dv.cuda_dtype() == "bfloat16"


def test_fingerprinter_splits_batches_at_its_max_batch():
    from tilesearch.models.base import ModelIdentity
    from tilesearch.models.runtime import CompiledFingerprinter

    sizes = []

    def run(batch):
        sizes.append(len(batch))
        return batch.reshape(len(batch), -1)[:, :4].astype(np.float32)

    fp = CompiledFingerprinter(ModelIdentity("t", "0" * 64, 4, "none"), "torch", run, 32,
                               max_batch=3, device="cuda")
    tiles = np.arange(7 * 32 * 32 * 3, dtype=np.uint8).reshape(7, 32, 32, 3)
    out = fp.embed(tiles)
    assert sizes == [3, 3, 1] and out.shape == (7, 4)
    np.testing.assert_array_equal(out, tiles.reshape(7, -1)[:, :4])
    assert "cuda" in repr(fp)


@no_cuda
def test_cli_device_cuda_fails_cleanly_without_a_gpu(tmp_path, make_geotiff, capsys,
                                                      monkeypatch):
    import sys

    from tilesearch.cli import main

    img = make_geotiff(tmp_path / "a.tif", 300, 300, crs="EPSG:3857")
    monkeypatch.setattr(sys, "argv", ["tilesearch", "index", str(img), "--store",
                                      str(tmp_path / "s.tiles"), "--device", "cuda", "-q"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    assert "no CUDA device" in capsys.readouterr().err
