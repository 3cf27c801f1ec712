# One command to set up and run the demo (`make demo`), one to run the tests (`make test`).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch: pip takes this release from local disk here; online, add
# `--index-url https://download.pytorch.org/whl/cpu` to avoid a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup demo test lint bench clean

$(BIN)/tilesearch: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/pip install -q --no-deps deepforest==2.1.0
	touch $@

setup: $(BIN)/tilesearch

demo: setup
	$(BIN)/tilesearch demo --out tilesearch-demo

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check tilesearch tests benchmarks
	$(BIN)/mypy tilesearch

bench: setup
	$(BIN)/python benchmarks/bench_search.py
	$(BIN)/python benchmarks/bench_index.py
	$(BIN)/python benchmarks/bench_models.py

clean:
	rm -rf $(VENV) tilesearch-demo .pytest_cache .mypy_cache .ruff_cache
