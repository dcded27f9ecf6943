# Tradewind: the two commands of the README are `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# processes the unit tests run on (`make unit`, `make test`)
UNIT_WORKERS ?= 2
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
	$(PY) -m pytest -q -n $(UNIT_WORKERS) tests/unit

integration: deps
	$(PY) -m pytest -q tests/integration

# the cluster tests' node image and wheels download in the background while lint and
# the other tests run; the cluster tests, which wait for them, run last. The unit tests
# (CPU-bound, each with its own home and database) run on UNIT_WORKERS processes; the
# others start real services and clusters and run one at a time. Both parts always run.
test: deps
	$(PY) -m tests.cluster.prebuild > $(VENV)/prebuild.log 2>&1 &
	$(MAKE) --no-print-directory lint
	status=0; \
	$(PY) -m pytest -q -n $(UNIT_WORKERS) tests/unit || status=1; \
	$(PY) -m pytest -q tests/integration tests/e2e tests/cluster || status=1; \
	exit $$status

bench: deps
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
