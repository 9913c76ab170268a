"""Alembic environment shared in shape by the ledger's and the gateway's migrations."""

from __future__ import annotations

from alembic import context

config = context.config
engine = config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        version_table=config.attributes["version_table"],
        transaction_per_migration=False,
    )
    context.run_migrations()
