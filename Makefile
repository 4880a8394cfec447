# One front door: `make run`, `make test`, `make lint`, `make bench`, `make image` (and `make gvisor`).
PORT ?= 8000
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-runsc lint bench image gvisor lock venv clean

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

# The isolation, limits and escape suites again, with every sandbox under gVisor (after `make gvisor`).
test-runsc: venv image
	KERNELGATE_TEST_RUNTIME=runsc $(BIN)/pytest tests/test_isolation.py tests/test_limits.py tests/test_escape.py tests/test_escape_output.py

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: venv image
	$(BIN)/python bench/bench.py

# Install gVisor's runsc and register it with Docker, for KERNELGATE_RUNTIME=runsc (root needed).
gvisor:
	bash images/runsc.sh

lock:
	PYTHON=$(PYTHON) bash images/build.sh lock

clean:
	rm -rf $(VENV) images/.wheels .pytest_cache .mypy_cache .ruff_cache
