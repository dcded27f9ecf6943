# Tradewind: the two commands of the README are `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export TRADEWIND_HOME ?= $(HOME)/tradewind

.PHONY: deps run test lint unit integration bench clean

deps:
	scripts/install-deps

run: deps
	$(VENV)/bin/tradewind standalone

lint: deps
	$(VENV)/bin/ruff check cluster tests bench examples
	$(VENV)/bin/ruff format --check cluster tests bench examples
	$(VENV)/bin/mypy

unit: deps
	$(PY) -m pytest -q tests/unit

integration: deps
	$(PY) -m pytest -q tests/integration

test: lint
	$(PY) -m pytest -q tests

bench: deps
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
