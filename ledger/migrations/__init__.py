"""Alembic migrations of the ledger's tables, run programmatically (`db upgrade`, start-up).

The ledger keeps its own version table (`ledger_alembic_version`) so that the
gateway's tables can evolve with migrations of their own in the same database.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

VERSION_TABLE = "ledger_alembic_version"


def alembic_config(engine: Engine, script_location: Path, version_table: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["engine"] = engine
    config.attributes["version_table"] = version_table
    return config


def run_env() -> None:
    """The body of every `env.py`: migrate on the engine handed over in the config."""
    from alembic import context

    config = context.config
    engine = config.attributes["engine"]
    with engine.begin() as connection:
        context.configure(connection=connection, version_table=config.attributes["version_table"])
        context.run_migrations()


def run_upgrade(engine: Engine) -> None:
    command.upgrade(alembic_config(engine, Path(__file__).parent, VERSION_TABLE), "head")
