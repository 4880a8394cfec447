# One front door: `make run`, `make test`, `make lint`, `make bench`, `make image`.
PORT ?= 8000
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench image lock venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

image:
	PYTHON=$(PYTHON) bash images/build.sh image

run: venv image
	$(BIN)/kernelgate serve --port $(PORT)

test: venv image
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: venv image
	$(BIN)/python bench/bench.py

lock:
	PYTHON=$(PYTHON) bash images/build.sh lock

clean:
	rm -rf $(VENV) images/.wheels .pytest_cache .mypy_cache .ruff_cache
