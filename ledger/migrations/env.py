"""Alembic environment: see `ledger.migrations.run_env`."""

from ledger.migrations import run_env

run_env()
