"""The order a client's files arrived in, which is the order they run in (SPEC §6: a
later file must not spend what an earlier one was sent to pay).

A file arrived when the built-in SFTP server made it visible: its receipt's
`received_at`, which the server also gives the receipt as its mtime (`write_receipt`:
one stat, not a JSON read, on every listing; no client can touch a receipt); else when
it came into its folder — its ctime, which no client can set either. Never the file's
own mtime: an SFTP client may set that (`put -p`; WinSCP keeps a file's own time by
default), and a file sent later with an older time ran first. In work/ a claim's receipt
moved with it; without one, its ctime is when it was claimed (the move sets it), and a
pass claims in this order; claims made within one tick of the kernel's clock (their
ctimes equal) keep it by their names, which count them (`Spool._claim_name`). Files that
came into in/ within one tick without receipts go by their names.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

from gateway.clock import SystemClock
from gateway.files import open_for_writing

Key = tuple[float, str]  # when it arrived (epoch seconds), then its name where it lies
ReceiptOf = Callable[[Path], Path | None]  # where a file's receipt would lie


def key(path: Path, info: os.stat_result, receipt: Path | None) -> Key:
    came = info.st_ctime
    if receipt is not None:
        with contextlib.suppress(OSError):  # none (a name too long to have one): its ctime
            came = os.stat(receipt).st_mtime
    return (came, path.name)


def in_order(paths: list[Path], receipt_of: ReceiptOf = lambda _: None) -> list[Path]:
    """`paths` in the order they arrived (one gone meanwhile left out)."""
    keyed = []
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            keyed.append((key(path, os.lstat(path), receipt_of(path)), path))
    return [path for _, path in sorted(keyed)]


def complete_files(
    folder: Path,
    settled_before: float | None = None,
    receipt_of: ReceiptOf = lambda _: None,
    ignored: Callable[[str], bool] = lambda _: False,
) -> list[Path]:
    """Regular files in `folder` that are complete by name (not `ignored`) and that no
    process holds open for writing (an upload written in place, by OpenSSH, is not taken
    half-done: `files.open_for_writing`), and, if given, unchanged since `settled_before`,
    seconds since the epoch; in the order they arrived. Where this process cannot tell
    whether a file is being written (no read lease: another user's file, no CAP_LEASE —
    `scan --once` run without it in OpenSSH mode), the file must be unchanged for
    `unknown_writer_settle_seconds` (it was taken half-written: an outside tester)."""
    found: list[tuple[Key, Path]] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):  # removed: `Pipeline.restore_folders`
        return []
    for entry in entries:
        if ignored(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(info.st_mode):  # never a symlink, folder or device
            continue
        if settled_before is not None and info.st_mtime > settled_before:
            continue
        path = Path(entry.path)
        if being_written(path, info.st_mtime):
            continue
        found.append((key(path, info, receipt_of(path)), path))
    return [path for _, path in sorted(found)]


def being_written(path: Path, mtime: float) -> bool:
    """Whether some process may still be writing `path` (its mtime given): told by a read
    lease (`files.open_for_writing`), else by a change within the last
    `unknown_writer_settle_seconds` (`complete_files`)."""
    writing = open_for_writing(path)
    return mtime > _writer_unknown() if writing is None else writing


unknown_writer_settle_seconds = 2.0  # `settle_seconds`' default
_told: list[bool] = []


def _writer_unknown() -> float:
    """When a file whose writer cannot be told must have last changed (the file system's
    clock: the files' own times are its), told in the log once a process."""
    if not _told:
        import structlog  # (here: `readahead` lists files before the logging modules load)

        _told.append(True)
        structlog.get_logger().warning(
            "files.writer_unknown",
            why="no read lease on an upload (no CAP_LEASE?): a file is taken once unchanged"
            f" for {unknown_writer_settle_seconds:g} s, however long its writer stalls",
        )
    return SystemClock().wall() - unknown_writer_settle_seconds


class ClaimOrder:
    """This process's claims counted within each second their names carry
    (`Spool._claim_name`): claims of one tick keep their order by their names."""

    def __init__(self) -> None:
        self.stamp, self.count = "", 0

    def next(self, stamp: str) -> int:
        if stamp != self.stamp:
            self.stamp, self.count = stamp, 0
        self.count += 1
        return min(self.count - 1, 0xFFFF)


claims = ClaimOrder()
