"""Alembic migrations of the ledger's tables, run programmatically (`db upgrade`, start-up).

The ledger keeps its own version table (`ledger_alembic_version`) so that the
gateway's tables can evolve with migrations of their own in the same database.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import Engine, inspect, text

from ledger.engine import WRITE_OPTION

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "ledger_alembic_version"
HEAD = "0005"  # the newest revision in versions/ (a test compares it with Alembic's head)


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


class UnknownRevision(Exception):
    """The database is at a revision this code's migrations do not have: a newer release
    upgraded it (or it is not this system's). Nothing is migrated or written."""


def revisions_of(engine: Engine, version_table: str) -> list[str] | None:
    """The revisions the database's version table holds (None: it has no such table)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(version_table):
            return None
        found = conn.execute(text(f"SELECT version_num FROM {version_table}")).scalars().all()
    return [str(revision) for revision in found]


def at_revision(engine: Engine, version_table: str, revision: str) -> bool:
    """Whether the database is at `revision` already. Every start of the service asks
    this; only when the answer is no is Alembic (a third of a second to import) loaded."""
    return revisions_of(engine, version_table) == [revision]


def check_known(
    found: list[str] | None, script_location: Path, name: str, head: str
) -> None:
    """Raise `UnknownRevision` when the database is at a revision none of the scripts in
    `script_location` is (each file of versions/ is `<revision>_<what>.py`): Alembic
    would fail with a traceback, and an older release must not write a newer schema."""
    known = {p.name.partition("_")[0] for p in (script_location / "versions").glob("*_*.py")}
    for revision in found or ():
        if revision not in known:
            raise UnknownRevision(
                f"the database's {name} schema is at revision {revision}, which this release "
                f"does not have (its newest is {head}): a newer release upgraded it; run "
                "that release, or restore the database as it was before the upgrade"
            )


class Migrated(NamedTuple):
    """A schema upgraded: from its revisions (none: a new database) to `head`."""

    schema: str
    found: tuple[str, ...]
    head: str


def upgrade_to_head(
    engine: Engine, script_location: Path, version_table: str, head: str, name: str
) -> Migrated | None:
    """Upgrade the `name` schema (its scripts in `script_location`) to `head`; what was
    done (None: it was there)."""
    found = revisions_of(engine, version_table)
    if found == [head]:
        return None
    check_known(found, script_location, name, head)
    from alembic import command

    command.upgrade(alembic_config(engine, script_location, version_table), "head")
    return Migrated(name, tuple(found or ()), head)


def run_upgrade(engine: Engine) -> Migrated | None:
    return upgrade_to_head(engine, Path(__file__).parent, VERSION_TABLE, HEAD, "ledger")
