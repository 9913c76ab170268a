# ekase-gateway: `make run` starts a demo installation, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-prerequisites lint bench bench-1m clean compile

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Byte-compile the project as `pip install` would for a wheel: the editable install
# leaves that to the first import, and where PYTHONDONTWRITEBYTECODE is set every
# `ekase-gateway` process would compile every module of the project anew at its start.
compile: $(STAMP)
	$(BIN)/python -m compileall -q gateway ledger

# The demo's SFTP port: make run DEMO_PORT=2223
DEMO_PORT ?= 2222
run: compile
	$(BIN)/ekase-gateway demo --dir demo --port $(DEMO_PORT) --run

lint: $(STAMP)
	$(BIN)/ruff check gateway ledger tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# OS packages the tests drive for real, installed when missing: xmlsec1 (seal interoperability),
# the PostgreSQL server binaries (the suite's own throwaway cluster where no
# EKASE_TEST_DATABASE_URL is given), OpenSSH's sshd and sftp (the OpenSSH deployment tests),
# the system Python's venv (systemd/install.sh makes the service's environment with it).
# Installing needs root and apt-get; otherwise the command is printed, and the tests that need
# a missing part skip and say why (CI runs as root, where every test runs).
TEST_PACKAGES_MISSING = \
	command -v xmlsec1 >/dev/null 2>&1 || missing="$$missing xmlsec1"; \
	{ command -v sftp && command -v ssh-keygen; } >/dev/null 2>&1 || missing="$$missing openssh-client"; \
	{ [ -x /usr/sbin/sshd ] || command -v sshd; } >/dev/null 2>&1 || missing="$$missing openssh-server"; \
	{ command -v initdb || ls /usr/lib/postgresql/*/bin/initdb; } >/dev/null 2>&1 || missing="$$missing postgresql"; \
	/usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$$missing python3-venv"

test-prerequisites:
	@missing=""; $(TEST_PACKAGES_MISSING); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "warning: not installed:$$missing (as root: apt-get install -y$$missing)"; exit 0; \
	fi; \
	echo "installing from the OS packages:$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
		|| { echo "error: apt-get install$$missing failed" >&2; exit 1; }

# Two workers: most tests wait on a daemon, a child or a database, so two share the cores
# well; the tests that install the service (one pip install per worker) stay on one.
test: compile lint test-prerequisites
	$(BIN)/pytest -n 2 --dist loadgroup

# mock-bank 0.9, the peer `make bench` compares with: in the venv for the bench only, not a
# dependency of the project. Where it cannot be installed the bench says so in its place.
MOCK_BANK := $(VENV)/.mock-bank-0.9
$(MOCK_BANK): $(STAMP)
	$(BIN)/pip install --quiet mock-bank==0.9 && touch $@ \
		|| echo "warning: mock-bank 0.9 could not be installed; the bench leaves it out"

# Every SPEC §10 workload on SQLite and PostgreSQL (EKASE_BENCH_DATABASE_URL, default the
# server at 127.0.0.1:5432; each run makes its own databases and drops them).
bench: compile $(MOCK_BANK)
	$(BIN)/python -m bench.run --transactions 100000

bench-1m: compile
	$(BIN)/python -m bench.run --transactions 1000000 --turns 1 --workloads payroll --databases sqlite

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
	find gateway ledger -name __pycache__ -prune -exec rm -rf {} +
