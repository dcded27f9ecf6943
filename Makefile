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

# the cluster tests' node image and wheels download in the background while lint and
# the other tests run; the cluster tests, which wait for them, run last
test: deps
	$(PY) -m tests.cluster.prebuild > $(VENV)/prebuild.log 2>&1 &
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest -q tests/unit tests/integration tests/e2e tests/cluster

bench: deps
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
