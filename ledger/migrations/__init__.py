"""Alembic migrations of the ledger's tables, run programmatically (`db upgrade`, start-up).

The ledger keeps its own version table (`ledger_alembic_version`) so that the
gateway's tables can evolve with migrations of their own in the same database.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from ledger.engine import WRITE_OPTION

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "ledger_alembic_version"
HEAD = "0004"  # the newest revision in versions/ (a test compares it with Alembic's head)


def alembic_config(engine: Engine, script_location: Path, version_table: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["engine"] = engine
    config.attributes["version_table"] = version_table
    return config


_MIGRATION_LOCK = 0x656B617365  # PostgreSQL advisory lock key: "ekase"


def run_env() -> None:
    """The body of every `env.py`: migrate on the engine handed over in the config."""
    from alembic import context

    config = context.config
    engine = config.attributes["engine"]
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        # SQLite alters a table by copying it (Alembic's batch mode): with foreign keys
        # enforced, dropping the old copy would fail while other tables refer to it. The
        # pragma works only outside a transaction; the check below makes up for it.
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        # One migration at a time: two first starts at once (a daemon and a command, two
        # nodes) both created the version table, and one failed on the other's.
        if sqlite:
            connection.execution_options(**{WRITE_OPTION: True})  # BEGIN IMMEDIATE
        try:
            with connection.begin():
                if not sqlite:  # held until this transaction ends
                    connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
                context.configure(
                    connection=connection, version_table=config.attributes["version_table"]
                )
                context.run_migrations()
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    assert not broken, f"a migration broke foreign keys: {broken[:5]}"
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


def at_revision(engine: Engine, version_table: str, revision: str) -> bool:
    """Whether the database is at `revision` already. Every start of the service asks
    this; only when the answer is no is Alembic (a third of a second to import) loaded."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(version_table):
            return False
        found = conn.execute(text(f"SELECT version_num FROM {version_table}")).scalars().all()
    return found == [revision]


def upgrade_to_head(engine: Engine, script_location: Path, version_table: str, head: str) -> None:
    if at_revision(engine, version_table, head):
        return
    from alembic import command

    command.upgrade(alembic_config(engine, script_location, version_table), "head")


def run_upgrade(engine: Engine) -> None:
    upgrade_to_head(engine, Path(__file__).parent, VERSION_TABLE, HEAD)
