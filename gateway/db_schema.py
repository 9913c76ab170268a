"""The database's two schemas — the ledger's and the gateway's, each with its own Alembic
version table — at this release's revisions: upgraded by every command that writes
(each migration in the journal, `db.migrated`), checked by those that only read, and
refused in one line (exit 2) when a newer release upgraded them: Alembic would fail on
a revision it does not have, and an older release must not write a newer schema."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Engine

from gateway import migrations as gateway_migrations
from gateway.errors import UsageError
from gateway.migrations import run_upgrade as upgrade_gateway
from ledger import migrations as ledger_migrations
from ledger.store import upgrade as upgrade_ledger

# Each schema: its name, its migrations package (VERSION_TABLE, HEAD, versions/).
_SCHEMAS: tuple[tuple[str, Any], ...] = (
    ("ledger", ledger_migrations),
    ("gateway", gateway_migrations),
)


def upgrade_database(
    engine: Engine, daemon_running: Callable[[], str | None] | None = None
) -> None:
    """Both schemas at this release's revisions — neither touched while the other is at
    a revision this release does not have, nor while a daemon runs on the spool
    (`daemon_running`: which, or None; not asked without a spool) — and each upgrade of
    an existing schema in the journal (`db.migrated`: which, from and to).

    A daemon of the release before goes on writing as it knows how on the schema migrated
    under it: one from before the kept day sums booked payments that the daily limits
    of the next release never counted (a tester, upgrading as `install.sh` did then)."""
    found = {
        name: ledger_migrations.revisions_of(engine, migrations.VERSION_TABLE)
        for name, migrations in _SCHEMAS
    }
    if all(found[name] == [migrations.HEAD] for name, migrations in _SCHEMAS):
        return  # every start of every command: two reads, nothing more
    try:
        for name, migrations in _SCHEMAS:
            ledger_migrations.check_known(
                found[name], _scripts(migrations), name, migrations.HEAD
            )
        daemon = daemon_running() if daemon_running and any(found.values()) else None
        if daemon is not None:
            raise UsageError(
                f"the database is at an earlier release's schema and {daemon} runs on this "
                "spool: stop it (systemctl stop ekase-gateway), then upgrade (ekase-gateway "
                "db upgrade -c CONFIG), then start it (nothing was done; a heartbeat that a "
                "killed daemon left, its pid now another process's, is removed by hand)"
            )
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
    """`ledger schema 0005, gateway schema 0018`: what the database is at."""
    return ", ".join(
        f"{name} schema "
        f"{', '.join(ledger_migrations.revisions_of(engine, migrations.VERSION_TABLE) or ['none'])}"
        for name, migrations in _SCHEMAS
    )


def check_schema(engine: Engine, hint: str) -> None:
    """Refuse (exit 2) a database whose schema is not the one this version writes."""
    for name, migrations in _SCHEMAS:
        found = ledger_migrations.revisions_of(engine, migrations.VERSION_TABLE)
        if found != [migrations.HEAD]:
            try:
                ledger_migrations.check_known(found, _scripts(migrations), name, migrations.HEAD)
            except ledger_migrations.UnknownRevision as exc:
                raise UsageError(str(exc)) from exc
            raise UsageError(
                f"the database's {name} schema is not at revision {migrations.HEAD}: {hint}"
            )


def _scripts(migrations: Any) -> Path:
    return Path(str(migrations.__file__)).parent
