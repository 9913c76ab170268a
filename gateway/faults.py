"""Faults of ours as an operator sees them (SPEC §6, §9): what kind a fault is, and the
one the daemon is waiting out.

Which errors are faults of ours is decided in one place, `filerun.fault_of_ours`; here
they are only named, for the log, the `ekase_faults_total{kind}` series and `status`:

    disk_full     no space left, or the quota reached (ENOSPC, EDQUOT)
    io            an I/O error, a read-only or vanished filesystem (EIO, EROFS, ESTALE, …)
    permissions   a file or folder we may not write (EACCES, EPERM)
    resources     out of memory, processes or file descriptors (ENOMEM, EMFILE, EAGAIN, …)
    database      the database unreachable, locked or failing (any DB-API error)
    signing_key   the seal key or certificate unusable
    other         a fault raised as such without a cause named above

A fault confined to one client's own folders (`client_fault`: we may not write its out/,
its in/ or work/, or its shelf; its quota is reached; a filesystem of its own, not the
spool's, is full) is that client's alone: the client
is held (`Held`) — its answers wait in the outbox, its files in work/, its new files in
in/ — and retried on every pass, while every other client's files go on.

While a fault lasts the daemon keeps an `Active` fault in its heartbeat
(`<spool>/run/daemons/<host>-<pid>.json`), which `status` shows with the files waiting on it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import structlog

from gateway.errors import SealError
from gateway.spool import SHELVES, Spool

log = structlog.get_logger("gateway.pipeline")
T = TypeVar("T")
P = ParamSpec("P")
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_PERMISSIONS = frozenset({errno.EACCES, errno.EPERM})
# A folder's mode or flags, a quota, a folder on another filesystem than the spool's (answers
# are renamed in): not the disk.
_CONFINABLE = _PERMISSIONS | {errno.EDQUOT, errno.EXDEV}
_RESOURCES = frozenset({errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.EAGAIN})
_SQLITE_FULL, _SQLITE_IOERR = 13, 10  # sqlite3.SQLITE_FULL, SQLITE_IOERR (primary codes)
KINDS = ("disk_full", "io", "permissions", "resources", "database", "signing_key", "other")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it was raised from, innermost last (a cycle ends the walk)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def kind(exc: BaseException) -> str:
    """The kind of a fault of ours (one of `KINDS`), from the first cause that names one."""
    from sqlalchemy.exc import DBAPIError  # here: `status` reads faults without the DB layer

    for cause in _causes(exc):
        if isinstance(cause, SealError):
            return "signing_key"
        if isinstance(cause, DBAPIError):
            # SQLite names a full disk or an I/O error itself (its file is on a disk too).
            code = getattr(cause.orig, "sqlite_errorcode", None)
            primary = code & 0xFF if isinstance(code, int) else None  # without the extension
            if primary == _SQLITE_FULL:
                return "disk_full"
            return "io" if primary == _SQLITE_IOERR else "database"
        if isinstance(cause, OSError) and cause.errno is not None:
            if cause.errno in _DISK_FULL:
                return "disk_full"
            if cause.errno in _PERMISSIONS:
                return "permissions"
            if cause.errno in _RESOURCES:
                return "resources"
            return "io"
    return "other"


# What the database server says when `database_url` itself is wrong (a database or role
# that does not exist, a wrong password): the configuration's mistake, not a fault that
# waiting out would cure.
_WRONG_DATABASE_URL = re.compile(
    r'(database|role) ".*" does not exist|password authentication failed'
)


def wrong_database_url(exc: BaseException) -> str | None:
    """The server's words, in one line, when `exc` says the configured `database_url` is
    wrong; None for any other error (the server away is a fault of ours)."""
    from sqlalchemy.exc import OperationalError  # here: `status` reads faults lazily

    if not isinstance(exc, OperationalError):
        return None
    said = " ".join(str(exc.orig).split())  # psycopg's hint is a second line
    return said if _WRONG_DATABASE_URL.search(said) else None


def describe(exc: BaseException) -> str:
    """One line for the log and `status`: the exception's type and message."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:500]


@dataclass(frozen=True, slots=True)
class Active:
    """A fault the daemon is waiting out: the work it stopped waits, unanswered, and is
    retried every `retry_seconds` (doubling up to a minute) until the fault clears."""

    kind: str
    error: str
    since: dt.datetime  # the first failed pass of this fault
    last: dt.datetime  # the latest failed pass
    retry_seconds: float
    files_waiting: int  # claimed files in work/ waiting for the fault to clear

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "error": self.error,
            "since": self.since.isoformat(),
            "last": self.last.isoformat(),
            "retry_seconds": self.retry_seconds,
            "files_waiting": self.files_waiting,
        }

    @classmethod
    def from_json(cls, value: object) -> Active | None:
        if not isinstance(value, dict):
            return None
        try:
            since = dt.datetime.fromisoformat(value["since"])
            last = dt.datetime.fromisoformat(value["last"])
            return cls(
                str(value["kind"]),
                str(value["error"]),
                since,
                last,
                float(value["retry_seconds"]),
                int(value["files_waiting"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


# A client's hold as a worker tells the daemon and the heartbeat carries it (`to_json`).
HoldJson = dict[str, str | int | None]


@dataclass(frozen=True, slots=True)
class ClientFault:
    """A fault of ours confined to one client's folders: that client is held."""

    client_id: str
    kind: str
    error: str
    path: str  # the file or folder it was met at
    folder: str  # the client's folder that holds it: what the operator mends
    # The client's files claimed in work/ and waiting in in/ when it was found (`held`);
    # None where its folder refuses to be listed (not known: never a 0 that misleads).
    files_claimed: int | None = 0
    files_held: int | None = 0

    def to_json(self) -> HoldJson:
        return {
            "kind": self.kind, "error": self.error, "path": self.path, "folder": self.folder,
            "files_claimed": self.files_claimed, "files_held": self.files_held,
        }  # fmt: skip

    @classmethod
    def from_json(cls, client_id: str, value: HoldJson) -> ClientFault:
        return cls(
            client_id, str(value["kind"]), str(value["error"]), str(value["path"]),
            str(value["folder"]), _number(value["files_claimed"]), _number(value["files_held"]),
        )  # fmt: skip

    def counted(self, spool: Spool) -> ClientFault:
        """With the client's files claimed and waiting now (read from the spool; None for a
        folder that refuses to be listed)."""
        claimed, waiting = (listed(look, self.client_id) for look in (spool.in_work, spool.waiting))
        return dataclasses.replace(
            self, files_claimed=None if claimed is None else len(claimed),
            files_held=None if waiting is None else len(waiting),
        )  # fmt: skip


def listed(look: Callable[[str], list[Path]], client_id: str) -> list[Path] | None:
    """`look(client_id)` at a client's files; None if its folder refuses to be listed (for
    those who only show it: the pass holds that client, `Held.confined`)."""
    try:
        return look(client_id)
    except OSError:
        return None


def _number(value: str | int | None) -> int | None:
    return None if value is None else int(value)


def client_folders(spool: Spool, client_id: str) -> tuple[Path, ...]:
    """The folders that are one client's alone: its SFTP folders, its receipts, its files
    in work/ and awaiting/, its shelves."""
    return (
        spool.inbox(client_id), spool.outbox(client_id), spool.trial_box(client_id),
        spool.receipts(client_id), spool.work(client_id), spool.awaiting(client_id),
        *(spool.root / shelf / client_id for shelf in SHELVES),
    )  # fmt: skip


def same_hold(one: ClientFault | None, other: ClientFault) -> bool:
    """Whether two faults hold their client alike: of one kind, in one of its folders
    (each answer a refusing out/ meets is another file, the fault the same)."""
    return one is not None and (one.kind, one.folder) == (other.kind, other.folder)


def tell_holds(before: Mapping[str, ClientFault], now: Mapping[str, ClientFault]) -> None:
    """Say once (at error level) that a client is held — again when what holds it changed
    (another folder, another kind) — and once that it is not. The daemon says it of its
    workers together (each may meet the same folder: the leader delivers to every
    client's out/), from what they tell it: it reads no folder on its event loop."""
    for client_id, fault in now.items():
        if not same_hold(before.get(client_id), fault):
            log.error(
                "client.fault", client=client_id, kind=fault.kind, folder=fault.folder,
                path=fault.path, error=fault.error, files_claimed=fault.files_claimed,
                files_held=fault.files_held,
            )  # fmt: skip
    for client_id in before.keys() - now.keys():
        log.info("client.recovered", client=client_id)


def client_fault(exc: BaseException, spool: Spool, client_id: str) -> ClientFault | None:
    """`exc` as a fault of `client_id`'s own folders: permission refused or a quota reached
    on a path in one of them (an immutable or read-only out/ or shelf, a client's
    filesystem quota), or no space left on a path in one of them that lies on a
    filesystem of its own (a mount of that client's, not the spool's disk). None for
    anything else — the spool's disk full, an I/O error, the database, the key: faults of
    the whole machine, which stop the pass for every client."""
    if not isinstance(exc, OSError) or exc.errno not in (*_CONFINABLE, errno.ENOSPC):
        return None
    folders = client_folders(spool, client_id)
    for name in (exc.filename2, exc.filename):  # the target of a move first
        if isinstance(name, str | bytes | os.PathLike):
            path = Path(os.fsdecode(name))
            if not any(path.is_relative_to(folder) for folder in folders):
                continue
            if exc.errno == errno.ENOSPC and _device(path) in (None, _device(spool.root)):
                return None  # the spool's own disk is full: every client's
            # The folder too: a temporary name met there tells the operator little, and
            # changes with every try.
            folder = next(f for f in folders if path.is_relative_to(f))
            if not _tree_open(spool, folder):
                return None  # the spool's own tree (work/, clients/, …) refuses: every client's
            return ClientFault(client_id, kind(exc), describe(exc), str(path), str(folder))
    return None


def _tree_open(spool: Spool, folder: Path) -> bool:
    """Whether the spool's tree that holds every client's `folder` (its first part below
    the spool: work/, clients/, archive/, …) can itself be opened, and, for a `folder`
    right below it that is not there (being made: a first rejection's shelf), written:
    a tree that refuses is every client's."""
    tree = spool.root / folder.relative_to(spool.root).parts[0]
    try:
        os.scandir(tree).close()  # opened, not read
    except FileNotFoundError:
        return True  # not there: nothing of it refuses
    except OSError:
        return False
    return folder.parent != tree or os.path.lexists(folder)


def _device(path: Path) -> int | None:
    """The filesystem (`st_dev`) of `path`, or of its nearest ancestor that exists; None
    if none can be read."""
    for each in (path, *path.parents):
        try:
            return each.stat().st_dev
        except FileNotFoundError:
            continue
        except OSError:
            return None
    return None


class Held(dict[str, ClientFault]):
    """The clients held in one pass, by id, with the fault that holds each."""

    def __init__(self, spool: Spool) -> None:
        super().__init__()
        self.spool = spool

    def isolate(self, client_id: str, exc: BaseException) -> bool:
        """Hold `client_id` if `exc` is confined to its folders; whether it was."""
        fault = client_fault(exc, self.spool, client_id)
        if fault is None:
            return False
        self.setdefault(client_id, fault)
        return True

    def confined(
        self, client_id: str, look: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T | None:
        """`look(*args, **kwargs)` at `client_id`'s own folders (its waiting files, its files
        in work/ or awaiting/, its stale temporaries); None, with the client held, if one of
        them refuses (an operator's chmod: that client's to mend, not every client's pass)."""
        try:
            return look(*args, **kwargs)
        except OSError as exc:
            if not self.isolate(client_id, exc):
                raise
            return None
