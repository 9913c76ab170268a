"""Where a bench installation keeps its ledger: a SQLite file in its spool, or a database
of its own on the PostgreSQL server `EKASE_BENCH_DATABASE_URL` names (by default the
machine's server, 127.0.0.1:5432).

Every run starts from a copy of a funded installation: on SQLite the folder is copied with
its database file; on PostgreSQL a new database is made from the funded one as its template.
The databases made are dropped at the end.
"""

from __future__ import annotations

import os
from typing import Protocol

from sqlalchemy import create_engine, make_url
from sqlalchemy.pool import NullPool

from bench.workloads import SQLITE_URL

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class Backend(Protocol):
    key: str  # as on the command line: sqlite, postgresql
    label: str

    def create(self, name: str, template: str | None = None) -> str:
        """The URL of a new database named `name`, a copy of `template`'s if given."""
        ...

    def drop(self, url: str) -> None: ...

    def close(self) -> None:
        """Drop whatever this backend made and is still there."""
        ...


class SQLite:
    key = "sqlite"
    label = "SQLite"

    def create(self, name: str, template: str | None = None) -> str:
        return SQLITE_URL  # in the installation's spool: copying the folder copies it

    def drop(self, url: str) -> None:
        """Nothing to drop: the database file goes with its installation's folder."""

    def close(self) -> None:
        """Nothing is kept outside the installations' folders."""


class PostgreSQL:
    key = "postgresql"
    label = "PostgreSQL"

    def __init__(self, server_url: str) -> None:
        self.server = make_url(server_url)
        self.prefix = f"ekase_bench_{os.getpid()}_"
        self.made: set[str] = set()
        self.admin = create_engine(self.server, isolation_level="AUTOCOMMIT", poolclass=NullPool)

    def create(self, name: str, template: str | None = None) -> str:
        database = self.prefix + name
        copy = f' TEMPLATE "{make_url(template).database}"' if template else ""
        self._execute(f'DROP DATABASE IF EXISTS "{database}"')
        self._execute(f'CREATE DATABASE "{database}"{copy}')
        self.made.add(database)
        return self.server.set(database=database).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        database = make_url(url).database
        self._execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        self.made.discard(str(database))

    def close(self) -> None:
        for database in sorted(self.made):
            self._execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        self.made.clear()
        self.admin.dispose()

    def _execute(self, sql: str) -> None:
        with self.admin.connect() as conn:
            conn.exec_driver_sql(sql)


def backend(key: str) -> Backend:
    if key == "sqlite":
        return SQLite()
    if key == "postgresql":
        return PostgreSQL(os.environ.get("EKASE_BENCH_DATABASE_URL", DEFAULT_POSTGRES_URL))
    raise ValueError(f"unknown database {key!r} (sqlite, postgresql)")
