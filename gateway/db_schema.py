"""The database's two schemas — the ledger's and the gateway's, each with its own Alembic
version table — at this release's revisions: upgraded by every command that writes
(each migration in the journal, `db.migrated`), checked by those that only read, and
refused in one line (exit 2) when a newer release upgraded them: Alembic would fail on
a revision it does not have, and an older release must not write a newer schema."""

from __future__ import annotations

from pathlib import Path

import structlog
from sqlalchemy import Engine

from gateway import migrations as gateway_migrations
from gateway.errors import UsageError
from gateway.migrations import run_upgrade as upgrade_gateway
from ledger import migrations as ledger_migrations
from ledger.store import upgrade as upgrade_ledger


def upgrade_database(engine: Engine) -> None:
    """Both schemas at this release's revisions; each upgrade of an existing schema in
    the journal (`db.migrated`: which, from and to)."""
    try:
        done = [upgrade_ledger(engine), upgrade_gateway(engine)]
    except ledger_migrations.UnknownRevision as exc:  # an older release on a newer schema
        raise UsageError(str(exc)) from exc
    log = structlog.get_logger("gateway.db")
    for migrated in done:
        if migrated is None or not migrated.found:
            continue  # at its revision already, or a new database: nothing was migrated
        log.info(
            "db.migrated", schema=migrated.schema,
            from_revision=", ".join(migrated.found), to_revision=migrated.head,
        )  # fmt: skip


def schema_revisions(engine: Engine) -> str:
    """`ledger schema 0004, gateway schema 0018`: what the database is at."""
    return ", ".join(
        f"{name} schema {', '.join(ledger_migrations.revisions_of(engine, table) or ['none'])}"
        for name, table in (
            ("ledger", ledger_migrations.VERSION_TABLE),
            ("gateway", gateway_migrations.VERSION_TABLE),
        )
    )


def check_schema(engine: Engine, hint: str) -> None:
    """Refuse (exit 2) a database whose schema is not the one this version writes."""
    for name, migrations, version_table, head in (
        ("ledger", ledger_migrations, ledger_migrations.VERSION_TABLE, ledger_migrations.HEAD),
        ("gateway", gateway_migrations, gateway_migrations.VERSION_TABLE, gateway_migrations.HEAD),
    ):
        found = ledger_migrations.revisions_of(engine, version_table)
        if found != [head]:
            scripts = Path(str(migrations.__file__)).parent
            try:
                ledger_migrations.check_known(found, scripts, name, head)
            except ledger_migrations.UnknownRevision as exc:
                raise UsageError(str(exc)) from exc
            raise UsageError(f"the database's {name} schema is not at revision {head}: {hint}")
