"""The database engine the ledger relies on: SQLite in WAL mode with durable commits and
writers that take the lock up front, or PostgreSQL as it comes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import QueuePool

sqlite_busy_timeout_ms = 30_000
WRITE_OPTION = "ledger_write"
sqlite_cache_kib = 65_536  # page cache per connection: a 100k-payment file's indexes fit
# Bigger pages than SQLite's 4 KiB: a 100k-payment commit writes ~45 MB to the WAL and
# again to the database, one write per page and a header each.
sqlite_page_bytes = 16_384


def make_engine(url: str) -> Engine:
    """An engine with the pragmas and locking the ledger relies on."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Connections are kept (the pool), so a file's run does not open the database
        # anew; a forked reading child closes the descriptors it inherits.
        engine = create_engine(
            url,
            connect_args={"timeout": sqlite_busy_timeout_ms / 1000, "check_same_thread": False},
            poolclass=QueuePool,
            pool_size=4,
            max_overflow=4,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_conn.cursor()
            # Only a new, empty database takes it (an existing one keeps its page size).
            cursor.execute(f"PRAGMA page_size={sqlite_page_bytes}")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # FULL: a commit is on disk before it returns. The outbox delivers an answer
            # right after its commit; with NORMAL a power cut could take back a commit
            # whose pain.002 the client already has. (A big file's commit is followed by
            # a checkpoint that syncs the WAL anyway: ~no cost there.)
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute(f"PRAGMA cache_size=-{sqlite_cache_kib}")
            cursor.execute("PRAGMA temp_store=MEMORY")
            cursor.execute(f"PRAGMA busy_timeout={sqlite_busy_timeout_ms}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # Ledger writers take the write lock up front (no deadlock upgrading a read
            # lock); everything else reads a WAL snapshot without waiting for writers.
            if conn.get_execution_options().get(WRITE_OPTION):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=True)


wal_autocheckpoint_pages = 1000  # SQLite's default: a commit checkpoints a WAL this big


def checkpoint(connection: Any) -> None:
    """Copy the WAL into the database (PASSIVE: never waits for readers or writers),
    then give `connection` back to the pool."""
    try:
        cursor = connection.cursor()
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        cursor.close()
    except sqlite3.Error:  # busy (another checkpoint runs): a later commit's does it
        pass
    finally:
        connection.close()


