"""SQLite writers queue at the writer gate (`ledger.engine.WriterGate`): a lock the kernel
hands on, held from a writer's BEGIN until its connection is back in the pool, and seen
by other processes (POSIX locks are per process, so they are asked from a child)."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import PendingRollbackError

from gateway.environment import sqlite_path
from gateway.pending import execute_due
from ledger.engine import WriterGate, make_engine, writing
from tests.pipeline_fixtures import Installation

# A child process that tries the gate without waiting: "held" or "free".
PROBE = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    print("held")
else:
    print("free")
"""


def gate_seen_by_another_process(database: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, f"{database}-writer.lock"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn, writing(conn):
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    engine.dispose()
    return path


def test_a_writer_holds_the_gate_from_begin_until_its_connection_is_back(database: Path):
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        with writing(conn):
            conn.execute(text("INSERT INTO t VALUES (1)"))
            assert gate_seen_by_another_process(database) == "held"
        assert gate_seen_by_another_process(database) == "held"  # committed, not yet back
    assert gate_seen_by_another_process(database) == "free"
    with engine.connect() as conn, conn.begin():  # a reader does not queue
        conn.execute(text("SELECT count(*) FROM t"))
        assert gate_seen_by_another_process(database) == "free"
    engine.dispose()


# A writer in a child process (the gate's longest wait first set to argv[2] seconds):
# it says when it begins, inserts 2 and says so.
WRITER = """
import sys
from sqlalchemy import text
from ledger import engine as ledger_engine
ledger_engine.gate_wait_seconds_max = float(sys.argv[2])
engine = ledger_engine.make_engine("sqlite:///" + sys.argv[1])
print("begins", flush=True)
with engine.connect() as conn, ledger_engine.writing(conn):
    conn.execute(text("INSERT INTO t VALUES (2)"))
print("written", flush=True)
"""
child_seconds_max = 30
waited_seconds = 1.0  # how long a writer is seen waiting at a held gate


def start_writer(database: Path, wait_seconds_max: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(database), str(wait_seconds_max)],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert child.stdout is not None and child.stdout.readline().strip() == "begins"
    return child


def rows(database: Path) -> list[int]:
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        found = list(conn.execute(text("SELECT x FROM t ORDER BY x")).scalars())
    engine.dispose()
    return found


def test_another_process_s_writer_waits_at_the_gate_and_goes_on_when_it_opens(database: Path):
    # Only the gate is held here, not SQLite's lock: what keeps the writer waiting is the
    # gate alone.
    fd = os.open(f"{database}-writer.lock", os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        child = start_writer(database, child_seconds_max)
        time.sleep(waited_seconds)
        assert child.poll() is None and rows(database) == [], "it wrote past the gate"
        fcntl.lockf(fd, fcntl.LOCK_UN)
        out, _ = child.communicate(timeout=child_seconds_max)
    finally:
        os.close(fd)
    assert child.returncode == 0 and out.strip() == "written"
    assert rows(database) == [2]


def test_a_writer_waits_at_a_held_gate_no_longer_than_sqlite_would(database: Path):
    """A process stopped or hung while it holds the gate holds up the others only as long
    as SQLite's lock would (`gate_wait_seconds_max`, 30 s; a second here): then they go on
    to SQLite's lock, which is free."""
    fd = os.open(f"{database}-writer.lock", os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        child = start_writer(database, waited_seconds)
        out, _ = child.communicate(timeout=child_seconds_max)
        assert child.returncode == 0 and out.strip() == "written"
    finally:
        os.close(fd)
    assert rows(database) == [2]


def test_the_gate_file_has_the_database_s_mode_whatever_the_umask(tmp_path: Path):
    path = tmp_path / "ledger.sqlite3"
    path.touch(mode=0o660)
    os.chmod(path, 0o660)
    umask = os.umask(0o027)
    try:
        engine = make_engine(f"sqlite:///{path}")
        with engine.connect() as conn, writing(conn):
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        engine.dispose()
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(f"{path}-writer.lock").st_mode) == 0o660


def test_a_gate_file_removed_while_in_use_is_made_again_and_used(database: Path):
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as conn, writing(conn):  # this process has the file open
        conn.execute(text("INSERT INTO t VALUES (1)"))
    os.unlink(f"{database}-writer.lock")
    with engine.connect() as conn, writing(conn):  # made again by the next writer
        conn.execute(text("INSERT INTO t VALUES (3)"))
        assert gate_seen_by_another_process(database) == "held"  # the file others lock
    assert gate_seen_by_another_process(database) == "free"
    engine.dispose()


def test_a_writer_that_fails_leaves_the_gate(database: Path):
    engine = make_engine(f"sqlite:///{database}")
    with pytest.raises(ZeroDivisionError), engine.connect() as conn, writing(conn):
        conn.execute(text("INSERT INTO t VALUES (1)"))
        _ = 1 / 0
    assert gate_seen_by_another_process(database) == "free"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    engine.dispose()


def test_a_writer_whose_connection_broke_leaves_the_gate(database: Path):
    engine = make_engine(f"sqlite:///{database}")
    with pytest.raises(PendingRollbackError), engine.connect() as conn, writing(conn):
        conn.execute(text("INSERT INTO t VALUES (1)"))
        conn.invalidate()  # as SQLAlchemy does on an error that closes the connection
    assert gate_seen_by_another_process(database) == "free"
    with engine.connect() as conn, writing(conn):  # and the next writer goes through
        conn.execute(text("INSERT INTO t VALUES (2)"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT x FROM t")).scalars().all() == [2]
    engine.dispose()


def test_writers_of_one_process_share_its_gate(database: Path):
    # Two engines on one database (as a command and its environment may hold): one gate,
    # else closing the second's lock file would drop the first's lock.
    first, second = make_engine(f"sqlite:///{database}"), make_engine(f"sqlite:///{database}")
    with first.connect() as a, writing(a):
        a.execute(text("INSERT INTO t VALUES (1)"))
        same = database.parent / "." / database.name
        assert WriterGate.of(str(database)) is WriterGate.of(str(same))
    with second.connect() as b, writing(b):
        b.execute(text("INSERT INTO t VALUES (2)"))
        assert gate_seen_by_another_process(database) == "held"
    assert gate_seen_by_another_process(database) == "free"
    first.dispose()
    second.dispose()


def test_a_gate_that_cannot_be_opened_still_lets_the_writer_write(tmp_path: Path):
    # The gate orders the waiting only: SQLite's own lock decides.
    path = tmp_path / "other.sqlite3"
    Path(f"{path}-writer.lock").mkdir()  # not a file this user can lock
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn, writing(conn):
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT x FROM t")).scalar() == 1
    engine.dispose()


# Another process's writer, holding the write lock until killed.
HOLDER = """
import sys, time
from sqlalchemy import text
from ledger.engine import make_engine, writing
engine = make_engine("sqlite:///" + sys.argv[1])
with engine.connect() as conn, writing(conn):
    conn.execute(text("CREATE TABLE IF NOT EXISTS held (x INTEGER)"))
    print("holding", flush=True)
    time.sleep(120)
"""


def test_a_pass_with_nothing_due_does_not_wait_for_the_writers(inst: Installation) -> None:
    """The leader's look for due payments, every pass, takes no write lock unless some
    are due: it does not queue behind the other worker's group."""
    path = sqlite_path(inst.settings.database_url)
    assert path is not None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        looked: list[list[int]] = []
        now = inst.env.clock.now()
        looking = threading.Thread(target=lambda: looked.append(execute_due(inst.env, now)))
        looking.start()
        looking.join(timeout=child_seconds_max / 3)
        assert looked == [[]], "the look for due payments waited for another writer"
    finally:
        holder.kill()
        holder.wait()


def open_descriptors_of(path: str) -> int:
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == path)


def test_no_descriptor_of_the_gate_is_kept_between_turns(database: Path):
    """A process that writes to many databases (a test run, a tool) keeps no descriptor
    of theirs: the gate's file is open only while a writer is inside."""
    lock = os.path.realpath(f"{database}-writer.lock")
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as conn, writing(conn):
        conn.execute(text("INSERT INTO t VALUES (1)"))
        assert open_descriptors_of(lock) == 1
    assert open_descriptors_of(lock) == 0
    engine.dispose()


def test_the_gate_file_belongs_to_the_database_s_owner(tmp_path: Path):
    """Made as SQLite makes its own files: by an operator's command run as root, the
    database's owner gets it (here another user's database), so that the service user
    can still open it; by anyone else, it is theirs as the database is."""
    path = tmp_path / "ledger.sqlite3"
    path.touch()
    if os.geteuid() == 0:
        os.chown(tmp_path, 65534, 65534)
        os.chown(path, 65534, 65534)
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn, writing(conn):
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    engine.dispose()
    database, gate = os.stat(path), os.stat(f"{path}-writer.lock")
    assert (gate.st_uid, gate.st_gid) == (database.st_uid, database.st_gid)
