"""The database engine the ledger relies on: SQLite in WAL mode with durable commits and
writers that take the lock up front, or PostgreSQL as it comes.

SQLite has one writer at a time, and a writer that finds the lock taken polls for it,
sleeping between tries (1, 2, 5, ... up to 100 ms): with two processes writing in turns
(the daemon's workers, a command beside the daemon), most of a wait was sleep after the
lock had come free. So writers first queue at a gate of their own, an exclusive POSIX
lock on `<database>-writer.lock` (`WriterGate`), tried again every `gate_poll_seconds`;
SQLite's lock is then almost always free. The gate only orders the waiting: SQLite's
own lock still decides, so a writer that cannot use the gate (the lock file not its to
open, or held for longer than SQLite would wait) writes all the same, as before.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Connection, Engine, RootTransaction, create_engine, event
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
            _write_ahead_log(cursor)
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

        gate = WriterGate.of(path if "///" in url and path != ":memory:" else None)

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # Ledger writers take the write lock up front (no deadlock upgrading a read
            # lock), through the gate; everything else reads a WAL snapshot without
            # waiting for writers.
            if conn.get_execution_options().get(WRITE_OPTION):
                # The pool's record of the connection, kept when an error invalidates it:
                # the gate is left when the connection is checked in.
                info = conn.connection.record_info
                assert info is not None, "a writer's connection stays in the pool"
                gate.enter()
                info[_GATED] = info.get(_GATED, 0) + 1
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        @event.listens_for(engine, "checkin")
        def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
            # After the transaction's COMMIT or ROLLBACK, never before: the next writer
            # finds SQLite's lock free.
            for _ in range(record.record_info.pop(_GATED, 0)):
                gate.leave()

        return engine
    return create_engine(url, pool_pre_ping=True)


_GATED = "ledger_writer_gate"


def _write_ahead_log(cursor: Any) -> None:
    """WAL mode. A new database's switch to it takes an exclusive lock, and SQLite answers
    "database is locked" at once, without waiting its busy timeout, while another process
    that opened it too holds a shared lock (two first starts at once: a daemon and a
    command, two nodes): tried again until the busy timeout. Once in WAL it is a read."""
    deadline = time.monotonic() + sqlite_busy_timeout_ms / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextlib.contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that reads the database as it was at its first read,
    for what counts and then reads (a report's totals, then its entries a page at a time):
    PostgreSQL's REPEATABLE READ (its default reads each statement afresh, so what another
    process committed between the two would be read but not counted), SQLite's deferred
    BEGIN (a WAL snapshot). Read only."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def writing(conn: Connection) -> RootTransaction:
    """`conn`'s transaction as a writer's: on SQLite the write lock taken up front, after
    the writers before it (`WriterGate`). For every transaction that writes: a deferred
    one that reads first fails at once ("database is locked") if another process wrote
    between its read and its write."""
    return conn.execution_options(**{WRITE_OPTION: True}).begin()


# A writer waiting at the gate tries it again this often (never longer: SQLite's own
# wait grows to 100 ms between tries) ...
gate_poll_seconds = 0.002
# ... and this long at most, SQLite's own wait: then it goes on to SQLite's lock, whose
# wait ends in "database is locked", a fault of ours that is retried. A process stopped
# or hung while it held the gate holds up no one for longer than it would SQLite's lock.
gate_wait_seconds_max = sqlite_busy_timeout_ms / 1000


class WriterGate:
    """The writers' queue of one SQLite database in this process: the first to enter
    opens `<database>-writer.lock` and takes its exclusive lock (waiting for other
    processes' writers), the last to leave releases it and closes the file. POSIX locks
    belong to the process — a forked child does not inherit it, and closing any
    descriptor of the file would drop it — so there is one gate per database per
    process (`of`). Opened at each turn, the file is the one the others lock even if
    someone removed or replaced it meanwhile, and no descriptor is kept between turns."""

    _gates: ClassVar[dict[str | None, WriterGate]] = {}
    _gates_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, database: str | None) -> None:
        self.database = database  # None: in memory, no gate
        self._fd: int | None = None  # open, and locked, while a writer is inside
        self._inside = 0  # writers of this process inside
        self._lock = threading.Lock()

    @classmethod
    def of(cls, database: str | None) -> WriterGate:
        key = os.path.realpath(database) if database else None
        with cls._gates_lock:
            return cls._gates.setdefault(key, cls(key))

    @property
    def path(self) -> str | None:
        return None if self.database is None else f"{self.database}-writer.lock"

    def enter(self) -> None:
        with self._lock:
            if self._inside == 0:
                self._fd = self._take()
            self._inside += 1

    def leave(self) -> None:
        with self._lock:
            self._inside -= 1
            if self._inside == 0 and self._fd is not None:
                os.close(self._fd)  # the lock goes with it
                self._fd = None

    def _take(self) -> int | None:
        """The gate's file, open and locked by this process; None if there is no gate,
        or after waiting `gate_wait_seconds_max` for it in vain."""
        deadline = time.monotonic() + gate_wait_seconds_max
        while (fd := self._open()) is not None:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.path.samestat(os.fstat(fd), os.stat(self.path or "")):
                    return fd
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN, errno.ENOENT):
                    os.close(fd)
                    return None
            os.close(fd)  # held by another, or removed or replaced meanwhile
            if time.monotonic() > deadline:
                return None
            time.sleep(gate_poll_seconds)
        return None

    def _open(self) -> int | None:
        """The gate's file, open; made as SQLite makes its own files, with the database
        file's mode and (by root) owner. None in memory, or where it is not this user's
        to write."""
        if self.path is None:
            return None
        flags = os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW
        with contextlib.suppress(OSError):  # not this user's to write: None
            for _ in range(2):  # a second time if another process made it meanwhile
                try:
                    return os.open(self.path, flags)
                except FileNotFoundError:
                    with contextlib.suppress(FileExistsError):
                        fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o600)
                        _made_like(fd, self.database)
                        return fd
        return None


def _made_like(fd: int, database: str | None) -> None:
    """Give a new gate file the database file's mode, and its owner where root made it
    (as far as it can: the gate works all the same for its maker)."""
    with contextlib.suppress(OSError):
        info = os.stat(database or "")
        os.fchmod(fd, info.st_mode & 0o666)
        if os.geteuid() == 0:
            os.fchown(fd, info.st_uid, info.st_gid)


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


