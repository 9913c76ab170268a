"""One spool, one database: the installation's identity, kept in both.

File numbers, MsgIds and statement numbers are the database's; the clients' folders,
the archive and the answers already sent are the spool's. A spool pointed at another
database (a mistyped `database_url`, a new database) would number again from where that
database stands and send a client a second pain.002 with a MsgId it already holds; a
database pointed at another spool (a mistyped `spool_dir`, the spool's disk not
mounted) would answer into folders no client reads and archive where no auditor looks.
So the first start writes a random identity into both — the database's counter
`installation`, the spool's file `installation` — and every later start that writes
compares them first (`check`), before the database is migrated, an account made or a
file processed (`scan --once` may have claimed a big file into work/ to read ahead: it
waits there, unchanged, for the run that has the right database). Every reader
(`status`, `ledger balance`, `environment.open_reader`) compares them too, before the
database's schema. An installation from before this check has neither: its next start
writes both (`record`).

And one spool, one user: root working in the service's spool would leave files there
the service cannot move or write (`check_user`).
"""

from __future__ import annotations

import os
import secrets
import shlex
import sys
from pathlib import Path

from sqlalchemy import Connection, Engine, insert, inspect, select
from sqlalchemy.exc import IntegrityError

from gateway import db
from gateway.errors import ConfigError, UsageError
from gateway.files import write_once

COUNTER = "installation"
FILE_NAME = "installation"


def check(engine: Engine | None, spool_root: Path) -> int | None:
    """Refuse (`UsageError`, one line) a database and a spool that are not each other's;
    `engine` None: a database not made yet (a SQLite file not there). Writes nothing.
    The identity they share, or None for a database that has none yet."""
    in_database = None if engine is None else _in_database(engine)
    _compare(spool_root, _read(spool_root / FILE_NAME), in_database)
    return in_database


def record(conn: Connection, spool_root: Path) -> int:
    """After `check`, the identity written where it is missing (in the caller's
    transaction for the database, a writer's: two first starts at once agree on one)."""
    marker = spool_root / FILE_NAME
    in_database = _counter(conn)
    if in_database is None:
        in_database = secrets.randbits(62) + 1
        try:
            with conn.begin_nested():
                conn.execute(insert(db.counters).values(name=COUNTER, value=in_database))
        except IntegrityError:  # another process's first start wrote one meanwhile
            in_database = _counter(conn)
            assert in_database is not None
    in_spool = _read(marker)
    if in_spool is None:
        in_spool = _write(marker, in_database)
    _compare(spool_root, in_spool, in_database)
    return in_database


def check_spool_there(spool_root: Path) -> None:
    """For `status`, which shows the spool beside the database: a spool that is not there
    is refused — never shown as an idle installation. (One that is there but not the
    database's, `open_reader` refuses with `check`.)"""
    if not spool_root.is_dir():
        raise ConfigError(
            "gateway.spool_dir",
            f"no spool at {spool_root}, beside a database in use (a mistyped spool_dir, or "
            "its disk not mounted?)",
        )


def check_user(spool_root: Path) -> None:
    """Refuse root working in a spool that belongs to another user (the service's):
    every file it made there — a shelf, an answer, SQLite's WAL — would be root's, and
    the daemon could no longer move or write it. A spool not made yet may be root's."""
    try:
        owner = spool_root.stat().st_uid
    except FileNotFoundError:
        return
    if os.geteuid() != 0 or owner == 0:
        return
    try:
        import pwd

        name = pwd.getpwuid(owner).pw_name
    except KeyError:
        name = str(owner)
    program = os.path.abspath(sys.argv[0])  # sudo's secure_path need not find it by name
    command = shlex.join(["sudo", "-u", name, program, *sys.argv[1:]])
    if (spool_root / "clients").is_symlink():  # OpenSSH mode: the uploads are not its own
        caps = "+lease,+dac_read_search"  # (a bare sudo cannot tell an upload still written)
        command = shlex.join([
            "setpriv", f"--reuid={name}", f"--regid={name}", "--init-groups",
            f"--inh-caps={caps}", f"--ambient-caps={caps}", program, *sys.argv[1:],
        ])  # fmt: skip
    raise UsageError(
        f"the spool {spool_root} is {name}'s and this runs as root, whose files there the "
        f"service could not move or write: run it as {name} ({command})"
    )


def _compare(spool_root: Path, in_spool: int | None, in_database: int | None) -> None:
    marker = spool_root / FILE_NAME
    if in_spool == in_database:
        return
    if in_spool is None:
        raise UsageError(
            f"the database belongs to installation {in_database} and {spool_root} holds no "
            f"installation file: it is not this database's spool (a mistyped spool_dir, or "
            f"its disk not mounted?); to make it so on purpose, write {in_database} into "
            f"{marker}"
        )
    if in_database is None:
        raise UsageError(
            f"the spool {spool_root} belongs to installation {in_spool} and the database "
            f"holds none: it is not this spool's database (a mistyped database_url, a new "
            f"database?); to start this spool over with it on purpose, remove {marker}"
        )
    raise UsageError(
        f"the spool {spool_root} belongs to installation {in_spool} and the database to "
        f"{in_database}: set database_url to the database this spool was used with, or, to "
        f"make this spool that database's on purpose, write {in_database} into {marker}"
    )


def _in_database(engine: Engine) -> int | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table(db.counters.name):
            return None  # a database not made yet, or from before counters
        return _counter(conn)


def _counter(conn: Connection) -> int | None:
    value = conn.execute(
        select(db.counters.c.value).where(db.counters.c.name == COUNTER)
    ).scalar()
    return None if value is None else int(value)


def _read(marker: Path) -> int | None:
    try:
        text = marker.read_text(encoding="ascii")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {marker}: {exc}") from exc
    value = text.split("#", 1)[0].strip()
    if not value.isdigit():
        raise UsageError(f"{marker} holds no installation identity: {text[:40]!r}")
    return int(value)


def _write(marker: Path, identity: int) -> int:
    """Write `marker` unless another process just did (then its identity)."""
    text = f"{identity}  # this spool's database: ekase-gateway keeps the same number in it\n"
    if write_once(marker, text):
        return identity
    found = _read(marker)
    assert found is not None
    return found
