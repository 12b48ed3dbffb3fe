# The two entry points a new machine needs: `make demo` runs the product against local
# emulators; `make test` runs the whole suite (lint, types, layers, tests). Both set up
# their own virtualenv in .venv, so nothing has to be installed by hand.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= all,test

.PHONY: venv test lint demo bench clean

$(BIN)/reconciler: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[$(EXTRAS)]'
	@touch $@

venv: $(BIN)/reconciler

lint: venv
	$(BIN)/ruff check reconciler tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -q

demo: venv
	bash scripts/demo.sh

bench: venv
	$(BIN)/python benchmarks/bench_aws.py
	$(BIN)/python benchmarks/bench_azure.py
	$(BIN)/python benchmarks/bench_windmill.py
	$(BIN)/python benchmarks/bench_azure_devops.py
	$(BIN)/python benchmarks/bench_oci_vault.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
