# Tradewind: the two commands of the README are `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# processes the unit tests run on (`make unit`, `make test`)
UNIT_WORKERS ?= 2
# processes the integration, e2e and cluster tests run on (`make integration`, `make test`)
INTEGRATION_WORKERS ?= 2
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
	$(PY) -m pytest -q -n $(UNIT_WORKERS) --dist loadfile tests/unit

integration: deps
	$(PY) -m pytest -q -n $(INTEGRATION_WORKERS) --dist loadfile tests/integration

# the cluster tests' node image and wheels download in the background while lint and
# the unit tests run (a cluster test that needs them before they are ready waits for
# them). The unit tests (CPU-bound, each with its own home and database) run on
# UNIT_WORKERS processes. The others start real services and clusters on free ports and
# mostly wait on them, so they run on INTEGRATION_WORKERS processes. Both parts hand out
# whole modules (a module's shared deployment starts once; the two whole-cluster tests
# run one after the other: tests/conftest.py); the integration modules go in the order
# given, so the cluster tests, the longest, start first. Both parts always run.
test: deps
	$(PY) -m tests.cluster.prebuild > $(VENV)/prebuild.log 2>&1 &
	$(MAKE) --no-print-directory lint
	status=0; \
	$(PY) -m pytest -q -n $(UNIT_WORKERS) --dist loadfile tests/unit || status=1; \
	$(PY) -m pytest -q -n $(INTEGRATION_WORKERS) --dist loadfile --no-loadscope-reorder \
		tests/cluster tests/integration tests/e2e || status=1; \
	exit $$status

bench: deps
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
