# neurogrow: every target installs what it needs first (idempotent).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PYTEST_ARGS ?=
ARGS ?=

.PHONY: install train smoke test test-fast lint format lock coverage bench clean

install: $(STAMP)

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install -q uv

$(STAMP): requirements.lock pyproject.toml setup.py | $(UV)
	test -x $(PY) || $(UV) venv -q --python $(PYTHON) $(VENV)
	$(UV) pip sync -q --python $(PY) requirements.lock
	$(UV) pip install -q --python $(PY) --no-deps -e .
	touch $(STAMP)

lock:
	$(UV) pip compile -q --no-emit-index-url --python-version 3.11 --extra dev pyproject.toml -o requirements.lock

## A few epochs of ResNet-32 on CIFAR-10-LT (IF=100), then the Many/Medium/Few summary.
train: install
	$(VENV)/bin/neurogrow-train experiment=default_cifar10_lt $(ARGS)

## The under-a-minute end-to-end check.
smoke: install
	$(VENV)/bin/neurogrow-train experiment=smoke $(ARGS)

test: install
	$(PY) -m pytest -q -n auto --dist worksteal $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -q -n auto -m "not slow" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check neurogrow tests benchmarks
	$(VENV)/bin/ruff format --check neurogrow tests benchmarks

format: install
	$(VENV)/bin/ruff check --fix neurogrow tests benchmarks
	$(VENV)/bin/ruff format neurogrow tests benchmarks

coverage: install
	$(VENV)/bin/neurogrow coverage $(ARGS)

## Conventional vs surgery=default, paired by seed (5 seeds x 2 arms x 30 epochs, resumable, commits each
## finished run): benchmarks/results/does_it_help.md. Options: ARGS="--epochs 40 --seeds 6".
bench: install
	$(PY) benchmarks/does_it_help.py --commit $(ARGS)

clean:
	rm -rf outputs multirun .pytest_cache .ruff_cache
