# Tradewind: the two commands of the README are `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export TRADEWIND_HOME ?= $(HOME)/tradewind

.PHONY: deps run-deps run test lint unit integration bench clean

# everything the tests need: service packages and the development tools
deps:
	VENV=$(VENV) scripts/install-deps test

# only what `tradewind standalone` needs: no services, no development tools
run-deps:
	VENV=$(VENV) scripts/install-deps run

run: run-deps
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
