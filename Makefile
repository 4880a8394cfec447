# One front door: `make run`, `make test`, `make lint`, `make bench`, `make image` (and `make gvisor`).
# `run` and `test` bring up what is missing first (images/setup.sh: a Docker engine, the kernel image,
# and for the tests a Chromium), as `.ci/run` does on a fresh clone.
PORT ?= 8000
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-runsc lint bench image setup gvisor lock venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

image:
	PYTHON=$(PYTHON) bash images/build.sh image

setup:
	PYTHON=$(PYTHON) bash images/setup.sh

run: venv setup
	$(BIN)/kernelgate serve --port $(PORT)

test: venv
	PYTHON=$(PYTHON) bash images/setup.sh test
	$(BIN)/pytest

# The isolation, limits and escape suites again, with every sandbox under gVisor (after `make gvisor`).
test-runsc: venv setup
	KERNELGATE_TEST_RUNTIME=runsc $(BIN)/pytest tests/test_isolation.py tests/test_limits.py tests/test_escape.py tests/test_escape_output.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: venv setup
	$(BIN)/python bench/bench.py

# Install gVisor's runsc and register it with Docker, for KERNELGATE_RUNTIME=runsc (root needed).
gvisor:
	bash images/runsc.sh

lock:
	PYTHON=$(PYTHON) bash images/build.sh lock

clean:
	rm -rf $(VENV) images/.wheels .pytest_cache .mypy_cache .ruff_cache
