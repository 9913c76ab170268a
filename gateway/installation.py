"""One spool, one database: the installation's identity, kept in both.

File numbers, MsgIds and statement numbers are the database's; the clients' folders,
the archive and the answers already sent are the spool's. A spool pointed at another
database (a mistyped `database_url`, a new database) would number again from
where that database stands and send a client a second pain.002 with a MsgId it already
holds. So the first start writes a random identity into both — the database's counter
`installation`, the spool's file `installation` — and every later start that writes
compares them, refusing a mismatch in one line before any account is made or file
processed (`scan --once` may have claimed a big file into work/ to read ahead: it
waits there, unchanged, for the run that has the right database);
`status` refuses it too, and a spool that is not there at all.

A spool without the file (a new spool folder, or one from before this check) takes the
database's identity: the database holds the numbering, so nothing repeats. A database
without one beside a spool that has one is refused: it is not the database the spool
was used with.

And one spool, one user: root working in the service's spool would leave files there
the service cannot move or write (`check_user`).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from gateway import db
from gateway.errors import ConfigError, UsageError

COUNTER = "installation"
FILE_NAME = "installation"


def check(conn: Connection, spool_root: Path) -> int:
    """The identity the database and the spool share, written where it is missing (in
    the caller's transaction for the database, a writer's: two first starts at once
    agree on one); `UsageError` if they name two."""
    marker = spool_root / FILE_NAME
    in_spool = _read(marker)
    in_database = conn.execute(
        select(db.counters.c.value).where(db.counters.c.name == COUNTER)
    ).scalar()
    if in_database is None:
        if in_spool is not None:
            raise UsageError(_foreign(marker, in_spool, None))
        in_database = secrets.randbits(62) + 1
        try:
            with conn.begin_nested():
                conn.execute(insert(db.counters).values(name=COUNTER, value=in_database))
        except IntegrityError:  # another process's first start wrote one meanwhile
            in_database = conn.execute(
                select(db.counters.c.value).where(db.counters.c.name == COUNTER)
            ).scalar_one()
    if in_spool is None:
        in_spool = _write(marker, in_database)
    if in_spool != in_database:
        raise UsageError(_foreign(marker, in_spool, in_database))
    return int(in_database)


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
    raise UsageError(
        f"the spool {spool_root} is {name}'s and this runs as root, whose files there the "
        f"service could not move or write: run it as {name} (sudo -u {name} ekase-gateway …)"
    )


def check_reading(conn: Connection, spool_root: Path) -> None:
    """The same check for `status`, which shows the spool beside the database: a spool
    that is not there, or that belongs to another database, is refused — never shown as
    an idle installation. Writes nothing (a missing identity is the writers' to add)."""
    if not spool_root.is_dir():
        raise ConfigError(
            "gateway.spool_dir",
            f"no spool at {spool_root}, beside a database in use (a mistyped spool_dir, or "
            "its disk not mounted?)",
        )
    in_spool = _read(spool_root / FILE_NAME)
    in_database = conn.execute(
        select(db.counters.c.value).where(db.counters.c.name == COUNTER)
    ).scalar()
    if in_spool is not None and in_spool != in_database:
        raise UsageError(_foreign(spool_root / FILE_NAME, in_spool, in_database))


def _foreign(marker: Path, in_spool: int, in_database: int | None) -> str:
    held = "none" if in_database is None else str(in_database)
    return (
        f"the spool {marker.parent} belongs to installation {in_spool} and the database "
        f"to {held}: its file numbers and MsgIds are not this spool's; set database_url "
        f"to the database this spool was used with, or, to go on with this one on "
        f"purpose, remove {marker}"
    )


def _read(marker: Path) -> int | None:
    try:
        text = marker.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {marker}: {exc}") from exc
    value = text.split("#", 1)[0].strip()
    if not value.isdigit():
        raise UsageError(f"{marker} holds no installation identity: {text[:40]!r}")
    return int(value)


def _write(marker: Path, identity: int) -> int:
    """Write `marker` unless another process just did (then its identity)."""
    temporary = marker.with_name(f".{FILE_NAME}.{os.getpid()}")
    temporary.write_text(
        f"{identity}  # this spool's database: ekase-gateway keeps the same number in it\n",
        encoding="ascii",
    )
    try:
        os.link(temporary, marker)  # never replaces one written meanwhile
    except FileExistsError:
        found = _read(marker)
        assert found is not None
        return found
    finally:
        temporary.unlink()
    return identity
