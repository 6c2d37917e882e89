# The two commands of the README:
#   make quickstart   set up .venv (if needed), train NeuMF and iALS once, serve the app
#   make test         set up .venv (if needed) and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Real MovieLens files: use ../shared/data when it is there (offline machines, CI), else the
# default cache (~/.cache/movierec), into which movierec downloads from GroupLens.
DATA_DIR ?= $(if $(wildcard ../shared/data/ml-latest-small),../shared/data,)
DATA_OPT := $(if $(DATA_DIR),--data-dir $(DATA_DIR),)

.PHONY: setup quickstart test lint bench clean

setup: $(VENV)/.installed

# torch==2.13.0 goes in first, alone: any later requirement that admits torch is then satisfied
# by it, and pip never resolves a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[all,dev]'
	@bash scripts/check_no_cuda.sh $(BIN)/pip
	@touch $@

# Get ml-latest-small, train NeuMF (about a minute, with a progress bar) and iALS (seconds) once,
# serve both (NeuMF answers by default; the page switches).
HOST ?= 127.0.0.1
PORT ?= 8000
quickstart: setup
	$(BIN)/movierec quickstart $(DATA_OPT) --host $(HOST) --port $(PORT)

test: setup
	OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV)
