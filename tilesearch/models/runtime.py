"""Run a fingerprint network on raw uint8 (N, H, W, 3) tile batches.

Three runtimes: ``openvino``, ``onnxruntime`` and ``torch`` (eager, always available when torch
is). The uint8 -> float conversion, the NHWC -> NCHW permute and the normalisation are part of
the exported graph, so a runtime is fed the raw batch. The batch size is dynamic; height and
width are fixed to the tile size the model was exported for.

Exported models are cached on disk (``$TILESEARCH_CACHE``, default ``~/.cache/tilesearch``,
subfolder ``models``), keyed by model name, weights sha256, tile size and runtime. A process
that finds the cached file loads it without importing torch, which costs seconds; only the
first export pays for torch and the conversion.

OpenVINO is the fastest runtime for every model measured (docs/benchmarks/models.md,
``python -m benchmarks.studies.models``), so ``runtime="auto"`` takes the first of
:data:`AUTO_ORDER` whose package is installed, falling back to the next one if exporting or
compiling fails.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tilesearch.errors import MissingDependencyError, ModelError
from tilesearch.models.base import ModelIdentity

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

RUNTIMES = ("openvino", "onnxruntime", "torch")
AUTO_ORDER = RUNTIMES
CACHE_FORMAT = 1
MAX_BATCH = 64
_PACKAGES = {"openvino": "openvino", "onnxruntime": "onnxruntime", "torch": "torch"}
_EXTRAS = {"onnxruntime": "onnx"}
_SUFFIX = {"openvino": ".xml", "onnxruntime": ".onnx"}

Runner = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class NetworkSpec:
    """What a runtime needs: an identity, a tile size and a way to build the torch module.

    ``make_module`` returns an eval-mode torch module mapping uint8 NHWC tiles (or blocks of
    `input_size` px) to features; it is called only when no cached export exists (or for the
    torch runtime). `graph` names the graph in the cache (default: the identity's recipe).
    """

    identity: ModelIdentity
    tile_size: int
    make_module: Callable[[], torch.nn.Module]
    input_size: int | None = None
    graph: str | None = None

    @property
    def side(self) -> int:
        """Pixels a side of the graph's input."""
        return self.input_size or self.tile_size


def cache_dir() -> Path:
    """Folder holding exported models: ``$TILESEARCH_CACHE/models``."""
    root = os.environ.get("TILESEARCH_CACHE") or Path.home() / ".cache" / "tilesearch"
    return Path(root) / "models"


def default_threads() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def installed_runtimes() -> list[str]:
    """Runtimes whose package can be imported, in :data:`AUTO_ORDER`."""
    return [r for r in AUTO_ORDER if importlib.util.find_spec(_PACKAGES[r]) is not None]


def check_runtime(runtime: str) -> None:
    """Raise unless `runtime` is known and its package is installed."""
    if runtime not in RUNTIMES:
        raise ModelError(f"unknown runtime {runtime!r}; choose one of: auto, {', '.join(RUNTIMES)}")
    if importlib.util.find_spec(_PACKAGES[runtime]) is None:
        raise MissingDependencyError(
            _PACKAGES[runtime], _EXTRAS.get(runtime), purpose=f"the {runtime} runtime"
        )


def cached_export(spec: NetworkSpec, runtime: str) -> Path:
    """Path of the cached export of `spec` for `runtime` (which may not exist yet)."""
    ident = spec.identity
    graph = spec.graph or ident.recipe
    recipe = "" if graph == "plain" else f"-{graph}"
    stem = f"{ident.name}-{ident.weights_sha256[:16]}{recipe}-{spec.side}px-{runtime}"
    return cache_dir() / f"{stem}-v{CACHE_FORMAT}{_SUFFIX[runtime]}"


def open_runner(spec: NetworkSpec, runtime: str, threads: int, per_input: int = 1) -> Runner:
    """A function running `spec` on uint8 NHWC batches with `runtime` (not ``auto``); each
    input holds `per_input` tiles (a block), which sizes OpenVINO's chunks."""
    check_runtime(runtime)
    if runtime == "torch":
        return _torch_runner(spec.make_module(), threads)
    path = cached_export(spec, runtime)

    def load(p: Path) -> Runner:
        if runtime == "openvino":
            return _OpenVINO(p, threads, per_input)
        return _onnxruntime_runner(p, threads)

    if path.is_file():
        try:
            return load(path)
        except Exception as exc:  # a damaged or foreign cache file: export it again
            log.warning("cannot load cached %s (%s); exporting again", path, exc)
            path.unlink(missing_ok=True)
    _export(spec, runtime, path)
    return load(path)


def _export(spec: NetworkSpec, runtime: str, path: Path) -> None:
    """Export `spec` for `runtime` to `path`, atomically (write a temp file, then rename)."""
    log.info("exporting %s for %s to %s", spec.identity.name, runtime, path)
    if importlib.util.find_spec("torch") is None:
        raise MissingDependencyError("torch", purpose=f"exporting the model for {runtime}")
    import torch

    module = spec.make_module()
    example = torch.zeros((2, spec.side, spec.side, 3), dtype=torch.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
        staged = Path(tmp) / path.name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if runtime == "openvino":
                _export_openvino(module, example, staged)
            else:
                _export_onnx(module, example, staged)
        if runtime == "openvino":  # the .bin first: a complete .xml means a complete pair
            os.replace(staged.with_suffix(".bin"), path.with_suffix(".bin"))
        os.replace(staged, path)


def _export_openvino(module: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    import openvino as ov

    shape = [-1, *example.shape[1:]]
    model = ov.convert_model(module, example_input=example, input=[(shape, ov.Type.u8)])
    ov.save_model(model, str(path), compress_to_fp16=False)


def _export_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    import torch

    if importlib.util.find_spec("onnx") is None:
        raise MissingDependencyError("onnx", "onnx", purpose="exporting to ONNX Runtime")
    torch.onnx.export(
        module,
        (example,),
        str(path),
        dynamo=False,  # the dynamo exporter needs onnxscript; TorchScript export suffices
        input_names=["tiles"],
        output_names=["features"],
        dynamic_axes={"tiles": {0: "n"}, "features": {0: "m"}},  # m = n x tiles a block
        opset_version=17,
    )


def openvino_config(threads: int, streams: int = 1) -> dict[str, Any]:
    """OpenVINO CPU settings for `threads` inference threads in `streams` streams.

    OpenVINO pins its threads to the first cores, so processes running one thread each (Ray
    workers) would share one core and run at about half speed (docs/cluster.md). Only a
    process that uses every core is pinned."""
    return {
        "INFERENCE_NUM_THREADS": threads,
        "NUM_STREAMS": streams,
        "PERFORMANCE_HINT": "LATENCY" if streams == 1 else "THROUGHPUT",
        "INFERENCE_PRECISION_HINT": "f32",
        "ENABLE_CPU_PINNING": threads >= (os.cpu_count() or 1),
    }


STREAM_MIN_BATCH = 16
"""Batches of at least this many tiles run split over one stream a thread; smaller ones (a
query) on one request using every thread. Why: docs/benchmarks/indexing.md#openvino-streams."""

STREAM_CHUNK = 8
"""A streamed batch goes to the streams in chunks of this many tiles, each taken by the first
stream that is free, so a stream slowed by the reading thread takes fewer chunks instead of
holding the others at the end of the batch. Why: docs/benchmarks/indexing.md#openvino-streams."""


class _Pending:
    """One batch's chunks in flight: filled by OpenVINO's callbacks, in any order."""

    def __init__(self, n: int) -> None:
        self.parts: list[np.ndarray | None] = [None] * n
        self.left = n
        self.done = threading.Event()
        self._lock = threading.Lock()
        if not n:
            self.done.set()

    def put(self, i: int, part: np.ndarray) -> None:
        self.parts[i] = part
        with self._lock:
            self.left -= 1
            if not self.left:
                self.done.set()

    def result(self) -> np.ndarray:
        if not self.parts:
            return np.empty((0, 0), np.float32)
        return np.concatenate(self.parts)  # type: ignore[arg-type]


class _OpenVINO:
    """OpenVINO on `threads` threads: a small batch (a query) on one request using them all,
    a large one in chunks over one stream a thread. Each is compiled at its first use. An
    input of `per_input` tiles (a block) counts as that many towards the batch and chunk
    sizes."""

    def __init__(self, path: Path, threads: int, per_input: int = 1) -> None:
        import openvino as ov

        self._ov, self.threads, self.per_input = ov, threads, per_input
        self._core = ov.Core()
        self._model = self._core.read_model(str(path))
        self._one: Any = None
        self._queue: Any = None
        self._lock = threading.Lock()  # a request runs one batch at a time ("is busy" otherwise)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            if self.threads == 1 or len(batch) * self.per_input < STREAM_MIN_BATCH:
                return self._single(batch)
            pending = self._submit(batch)
            self._finish(pending)
            return pending.result()

    def stream(self, batches: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Fingerprints of each batch in turn. The next batch's chunks go in while the last
        ones of the batch before run, so no stream waits at a batch's end. Waiting for a batch
        waits for every request in flight (which is how a failed one's error surfaces), so
        the model is idle while the batches given then are stored. Calls from other threads
        wait until the stream ends (and one from the consuming thread itself would never
        return)."""
        if self.threads == 1:
            yield from (self(b) if len(b) else np.empty((0, 0), np.float32) for b in batches)
            return
        with self._lock:
            held: deque[_Pending] = deque()
            for batch in batches:
                held.append(self._submit(batch))
                while len(held) > 1 or (held and held[0].done.is_set()):
                    self._finish(held[0])
                    yield held.popleft().result()
            while held:
                self._finish(held[0])
                yield held.popleft().result()

    def _single(self, batch: np.ndarray) -> np.ndarray:
        if self._one is None:
            config = openvino_config(self.threads)
            self._one = self._core.compile_model(self._model, "CPU", config).create_infer_request()
        result = self._one.infer({0: batch}, share_inputs=True, share_outputs=False)
        return np.asarray(result[0], dtype=np.float32)

    def _submit(self, batch: np.ndarray) -> _Pending:
        """Start `batch` in chunks of STREAM_CHUNK tiles, each on the first free stream."""
        if self._queue is None:
            config = openvino_config(self.threads, self.threads)
            net = self._core.compile_model(self._model, "CPU", config)
            self._queue = self._ov.AsyncInferQueue(net, self.threads)
            self._queue.set_callback(_collect)
        step = max(1, min(STREAM_CHUNK // self.per_input, -(-len(batch) // self.threads)))
        pending = _Pending(-(-len(batch) // step))
        for i, start in enumerate(range(0, len(batch), step)):
            self._queue.start_async({0: np.ascontiguousarray(batch[start:start + step])},
                                    (pending, i))
        return pending

    def _finish(self, pending: _Pending) -> None:
        """Wait for `pending`; waiting for every request raises a failed one's error."""
        if not pending.done.is_set():
            self._queue.wait_all()
        if not pending.done.is_set():
            raise ModelError("OpenVINO returned no fingerprints for a batch")


def _collect(request: Any, userdata: tuple[_Pending, int]) -> None:
    pending, i = userdata
    pending.put(i, np.asarray(request.get_output_tensor(0).data, np.float32).copy())


def _onnxruntime_runner(path: Path, threads: int) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(batch: np.ndarray) -> np.ndarray:  # InferenceSession.run is thread-safe
        return np.asarray(session.run(None, {"tiles": batch})[0], dtype=np.float32)

    return run


def _torch_runner(module: torch.nn.Module, threads: int) -> Runner:
    import torch

    torch.set_num_threads(threads)

    def run(batch: np.ndarray) -> np.ndarray:  # an eval module keeps no state between calls
        with torch.inference_mode():
            out = module(torch.from_numpy(batch))
        return out.numpy().astype(np.float32, copy=False)

    return run


def tile_module(net: torch.nn.Module, normalise: Callable[[Any], Any]) -> torch.nn.Module:
    """Wrap `net` so it takes uint8 (N, H, W, 3) tiles: cast, permute, normalise, run."""
    import torch

    class TileInput(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, tiles: torch.Tensor) -> torch.Tensor:
            return self.net(scale(tiles.permute(0, 3, 1, 2).float()))

        def normalise(self, x: torch.Tensor) -> torch.Tensor:
            """The model's input range from uint8-valued float NCHW (for `models.blocks`)."""
            return scale(x)

    scale = normalise
    return TileInput().eval()


class CompiledFingerprinter:
    """A :class:`~tilesearch.models.base.Fingerprinter` over one runtime's runner.

    Thread-safe: ``embed`` may be called from several threads at once (the web app's
    concurrent image searches). The OpenVINO runner runs one batch at a time (its one infer
    request), ONNX Runtime sessions and eval-mode torch modules run calls concurrently.

    A model of a block recipe (`recipes.block_tiles` > 1) has `for_blocks(stride)`: the
    fingerprinter of its block graph, whose inputs are blocks of tiles (`tile_size` of that
    fingerprinter is the block's side, `per_input` its tiles) and whose ``embed`` gives each
    block's tiles row by row.
    """

    def __init__(
        self, identity: ModelIdentity, runtime: str, runner: Runner, tile_size: int,
        max_batch: int | None = None, device: str = "cpu", *,
        blocks: Callable[[int], CompiledFingerprinter] | None = None, per_input: int = 1,
    ) -> None:
        self.identity = identity
        self.runtime = runtime
        self.tile_size = tile_size
        self.max_batch = max_batch
        self.device = device
        self.per_input = per_input
        self._run = runner
        self._make_blocks = blocks
        self._blocks: dict[int, CompiledFingerprinter] = {}
        self._blocks_lock = threading.Lock()

    def for_blocks(self, stride: int) -> CompiledFingerprinter:
        """The block graph's fingerprinter for tiles `stride` px apart, compiled at first use.
        ModelError for a model of a per-tile recipe, or tiles the blocks cannot line up with."""
        if self._make_blocks is None:
            raise ModelError(f"recipe {self.identity.recipe} fingerprints tiles one by one")
        with self._blocks_lock:
            if stride not in self._blocks:
                self._blocks[stride] = self._make_blocks(stride)
            return self._blocks[stride]

    def __repr__(self) -> str:
        return (f"<Fingerprinter {self.identity.name} on {self.runtime} ({self.device}), "
                f"{self.tile_size}px>")

    def embed(self, tiles: np.ndarray) -> np.ndarray:
        """Fingerprints of uint8 tiles (N, tile, tile, 3) as float32 (N, dim)."""
        tiles = self._check(tiles)
        if len(tiles) == 0:
            return np.zeros((0, self.identity.dim), dtype=np.float32)
        step = max(1, (self.max_batch or MAX_BATCH) // self.per_input)
        parts = [
            self._run(np.ascontiguousarray(tiles[i : i + step]))
            for i in range(0, len(tiles), step)
        ]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def embed_batches(self, batches: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Fingerprints of each batch of `batches` in turn, as `embed` gives them; a runtime
        that can (OpenVINO) starts the next batch before the last one ends. An empty batch
        gives (0, dim)."""
        stream = getattr(self._run, "stream", None)
        empty = np.zeros((0, self.identity.dim), np.float32)
        if stream is None:
            yield from (self.embed(b) if len(b) else empty for b in batches)
            return
        for out in stream(self._check(b) if len(b) else b for b in batches):
            yield out if len(out) else empty

    def _check(self, tiles: np.ndarray) -> np.ndarray:
        tiles = np.asarray(tiles)
        size = self.tile_size
        if tiles.ndim != 4 or tiles.shape[1:] != (size, size, 3):
            what = "blocks" if self.per_input > 1 else "tiles"
            raise ModelError(
                f"{self.identity.name} expects {what} of shape (N, {size}, {size}, 3), "
                f"got {tiles.shape}"
            )
        if tiles.dtype != np.uint8:
            raise ModelError(f"tiles must be uint8, got {tiles.dtype}")
        return tiles
