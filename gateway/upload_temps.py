"""The built-in SFTP server's hidden uploads: `.upload-<16 hex>` in a client's in/ or test/.

The server writes each upload under such a name and renames it to the client's name
when the client closes it (`sftp.session`). From the moment it makes the file until
that rename (or until it discards the upload) it holds an exclusive `flock` on it. The
lock belongs to the open file, so it ends with the session that writes, and with the
daemon however it ends (SIGKILL included); and a new upload always makes a new name.
A hidden upload whose lock is free therefore has no writer and never will: the spool's
housekeeping removes it on every pass (`Spool.remove_stale_temporaries`), whatever its
age, and logs `sftp.upload.abandoned` — except in the instant between the server making
it and locking it, when it is empty and new (`making_seconds`): a pass leaves such a file
to a later one (a server that died in that instant left an empty file, removed then), and
a server whose lock a pass took in that instant removes its file itself and makes
another. A lock spans processes, so a daemon sharing the spool never removes an upload
that another daemon's session is writing, however long that session pauses — the same
rule as for claims in work/ (`spool.locked`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

UPLOAD_PREFIX = ".upload-"
_NAME = re.compile(re.escape(UPLOAD_PREFIX) + r"[0-9a-f]{16}\Z")
# A new name is tried again only when a pass took the lock of the one just made in the
# instant between making and locking it (the server then removes that file itself).
create_attempts_max = 3
# An empty hidden upload whose lock is free and that changed less than this ago is being made.
making_seconds = 1.0


def create(folder: str, mode: int) -> tuple[str, int]:
    """A new hidden upload in `folder`, open for reading and writing and locked by the
    returned descriptor: (path, descriptor). Closing the descriptor releases the lock,
    so the caller renames or removes the file first."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(create_attempts_max):
        path = os.path.join(folder, UPLOAD_PREFIX + secrets.token_hex(8))
        fd = os.open(path, flags, mode)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.path.samestat(os.fstat(fd), os.lstat(path)):
                return path, fd
        except BlockingIOError:  # a pass is looking at it: ours to remove
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        except FileNotFoundError:
            pass  # removed meanwhile (by a pass of a release before `making_seconds`)
        os.close(fd)
    raise BlockingIOError(errno.EAGAIN, "cannot make a hidden upload file; try again", folder)


def remove_abandoned(client_id: str, folders: tuple[Path, ...], now_epoch: float) -> int:
    """Remove the hidden uploads in `folders` that no session writes any more (see the
    module's docstring); how many were removed. `now_epoch`: the clock's `wall()`."""
    removed = 0
    for folder in folders:
        try:
            names = [n for n in os.listdir(folder) if _NAME.match(n)]
        except (FileNotFoundError, NotADirectoryError):  # removed (`Pipeline.restore_folders`)
            continue
        for name in names:
            size = _remove_unless_locked(folder / name, now_epoch)
            if size is not None:
                removed += 1
                _log().warning("sftp.upload.abandoned", client=client_id, area=folder.name,
                            file=name, size_bytes=size)  # fmt: skip
    return removed


def abandoned(path: Path, now_epoch: float) -> bool:
    """Whether `path` is a hidden upload of the server's that no session writes any more
    (its lock is free), read only (`status`). False where that cannot be told: not such a
    name, gone, or not the caller's."""
    if not _NAME.match(path.name):
        return False
    with _unwritten(path, fcntl.LOCK_SH, now_epoch) as info:
        return info is not None


def _log() -> Any:
    # Imported here: the spool (and so this module) is loaded before the logging setup by
    # `scan --once`'s read-ahead, which starts reading before any heavy module.
    import structlog

    return structlog.get_logger("gateway.sftp")


def _remove_unless_locked(path: Path, now_epoch: float) -> int | None:
    """Unlink `path` if no one holds its lock, keeping it locked meanwhile; its size then."""
    with _unwritten(path, fcntl.LOCK_EX, now_epoch) as info:
        if info is None:
            return None
        try:
            os.unlink(path)  # renamed or discarded by its session meanwhile: not found
        except FileNotFoundError:
            return None
        return info.st_size


@contextlib.contextmanager
def _unwritten(path: Path, lock: int, now_epoch: float) -> Iterator[os.stat_result | None]:
    """`path`'s status while this process holds its `lock` (then no session writes it), or
    None: a session holds it or is making it (`making_seconds`), or it is gone, a link, or
    not the gateway's own file (under
    OpenSSH a client's file of such a name is its SFTP user's, written without a lock)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, lock | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None  # a session is writing it
            return
        info = os.fstat(fd)  # final now: no one writes it
        ours = stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid()
        # Its change time, which a client cannot set (`put -p` sets the others).
        made = info.st_size == 0 and now_epoch - info.st_ctime < making_seconds
        yield info if ours and not made else None
    finally:
        os.close(fd)


def hold_receipt(receipt: Path) -> None:
    """Make `receipt` new to `remove_orphan_receipts` (its ctime now, its times kept) before
    its file is moved: between the file's move and its own it is alone, however long the
    file waited."""
    with contextlib.suppress(OSError):  # none (a receipt-less file, a name too long)
        info = os.stat(receipt)
        os.utime(receipt, ns=(info.st_atime_ns, info.st_mtime_ns))


def remove_orphan_receipts(
    receipts: Path, uploads: tuple[Path, Path], changed_before: float
) -> int:
    """Remove the receipts (`receipts`; a trial's in its `test` folder) whose file is not
    in in/ or test/ (`uploads`) — an upload, rename or claim stopped between moving a
    file and its receipt — and write_once's hidden temporaries, once unchanged since
    `changed_before` (their ctime: a receipt renamed with its file keeps its mtime): a
    receipt alone keeps its name from every upload (`receipts.write_receipt`). How many
    were removed."""
    removed = 0
    for folder, files in ((receipts, uploads[0]), (receipts / "test", uploads[1])):
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            hidden = entry.name.startswith(".")
            if not (hidden or entry.name.endswith(".json")):
                continue
            if not hidden and os.path.lexists(files / entry.name.removesuffix(".json")):
                continue
            with contextlib.suppress(FileNotFoundError):
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) and info.st_ctime < changed_before:
                    os.unlink(entry.path)
                    removed += 1
    return removed
