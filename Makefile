# ekase-gateway: `make run` starts a demo installation, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-1m clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/ekase-gateway demo --dir demo --run

lint: $(STAMP)
	$(BIN)/ruff check gateway ledger tests bench
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/run.py --transactions 100000

bench-1m: $(STAMP)
	$(BIN)/python bench/run.py --transactions 1000000 --scans 1

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
