# ekase-gateway: `make run` starts a demo installation, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-1m clean compile

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Byte-compile the project as `pip install` would for a wheel: the editable install
# leaves that to the first import, and where PYTHONDONTWRITEBYTECODE is set every
# `ekase-gateway` process would compile ~70 modules anew (~0.03 s of each `scan`).
compile: $(STAMP)
	$(BIN)/python -m compileall -q gateway ledger

run: compile
	$(BIN)/ekase-gateway demo --dir demo --run

lint: $(STAMP)
	$(BIN)/ruff check gateway ledger tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: compile lint
	$(BIN)/pytest

bench: compile
	$(BIN)/python bench/run.py --transactions 100000

bench-1m: compile
	$(BIN)/python bench/run.py --transactions 1000000 --scans 1

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
	find gateway ledger -name __pycache__ -prune -exec rm -rf {} +
