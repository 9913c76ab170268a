"""Migration steps the ledger's and the gateway's share: references that the database no
longer checks row by row, and tables whose rows are never deleted (ARCHITECTURE.md,
"References without per-row checks").

A foreign key costs PostgreSQL a trigger per inserted row (a query and a lock of the
row it names); the tables written a row per payment — `ledger_postings`,
`gw_payments` — drop theirs. What the keys guarded stays guarded: the rows they name
(accounts, transfers, files) can never be deleted, which these triggers enforce on
both databases, every id written comes from the database in the same transaction, and
the audit (`ledger.audit.check_invariants`, `gateway.db.check_references`) finds any
row that names one that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op


def drop_foreign_keys(table: str, columns: Sequence[str]) -> None:
    """Drop the foreign keys of `table`'s `columns`, made with the database's own names:
    PostgreSQL's `<table>_<column>_fkey`; SQLite's are unnamed and cannot be altered, so
    the table is rebuilt without them (Alembic's batch mode, naming them first)."""
    if _sqlite():
        convention = {"fk": "fk_%(table_name)s_%(column_0_name)s"}
        with op.batch_alter_table(table, naming_convention=convention) as batch:
            for column in columns:
                batch.drop_constraint(f"fk_{table}_{column}", type_="foreignkey")
        return
    for column in columns:
        op.drop_constraint(f"{table}_{column}_fkey", table, type_="foreignkey")


def add_foreign_keys(table: str, references: Sequence[tuple[str, str]]) -> None:
    """The downgrade of `drop_foreign_keys`: (column, referred table) keys on `id`."""
    if _sqlite():
        with op.batch_alter_table(table) as batch:
            for column, referred in references:
                batch.create_foreign_key(f"fk_{table}_{column}", referred, [column], ["id"])
        return
    for column, referred in references:
        op.create_foreign_key(f"{table}_{column}_fkey", table, referred, [column], ["id"])


def refuse_deletes(table: str) -> None:
    """A trigger that refuses any DELETE from `table` (on PostgreSQL TRUNCATE too)."""
    message = f"{table} rows are never deleted"
    if _sqlite():
        op.execute(
            f"CREATE TRIGGER {table}_kept BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        )
        return
    op.execute(
        f"CREATE FUNCTION {table}_kept() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN RAISE EXCEPTION '{message}'; END $$"
    )
    op.execute(
        f"CREATE TRIGGER {table}_kept BEFORE DELETE OR TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_kept()"
    )


def allow_deletes(table: str) -> None:
    """The downgrade of `refuse_deletes`."""
    op.execute(f"DROP TRIGGER {table}_kept" + ("" if _sqlite() else f" ON {table}"))
    if not _sqlite():
        op.execute(f"DROP FUNCTION {table}_kept()")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"
