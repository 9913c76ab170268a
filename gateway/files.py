"""The few ways the gateway touches files, each in one place.

- `write_atomically`: a file appears whole or not at all — written under a hidden
  temporary name in the same folder, synced, renamed into place, the folder synced.
- `write_in_place`: a file only its writer reads until it moves it (a sidecar in work/).
- `write_new` + `temporary_for` + `sync_all`: the parts of those two, for a caller that
  writes many files and makes them durable together (`sync_all` syncs files and folders
  concurrently, so the filesystem commits them in a few journal transactions, not one each).
- `fsync_dir`: a rename is durable only once its folder is synced.
- `sha256_file`: a file's SHA-256 and size, read a block at a time (files of hundreds of
  MB are never held in memory).
- `key_exposure`: what a private key file's mode lets others do.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import os
import secrets
import signal
import stat
from collections.abc import Collection, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

hash_block_bytes = 1 << 20
concurrent_syncs_max = 8  # files `sync_all` syncs at once


class Digest(NamedTuple):
    """A file's SHA-256 (hex) and size in bytes."""

    sha256: str
    size: int


def sha256_file(path: Path) -> Digest:
    """The SHA-256 and size of the file at `path`."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as handle:
        while block := handle.read(hash_block_bytes):
            digest.update(block)
            size += len(block)
    return Digest(digest.hexdigest(), size)


def key_exposure(path: Path) -> str | None:
    """Why a private key file's mode is refused, with the fix (`mode 0640 gives its group
    access to it; chmod 600 …`); None for 0600 or stricter."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & 0o077:
        return None
    who = [name for name, bits in (("its group", 0o070), ("everyone", 0o007)) if mode & bits]
    return f"mode {mode:04o} gives {' and '.join(who)} access to it; chmod 600 {path}"


def move_no_replace(source: Path | str, target: Path | str) -> None:
    """Rename `source` to `target` unless something is there (FileExistsError), in one
    step for every process: Linux's `renameat2(RENAME_NOREPLACE)` (`os.replace` after a
    look would put one daemon's upload over another's published in between). Where the
    kernel or file system has no such rename (NFS), a look and then a rename: still one
    step, never two names for the file, but two processes may race between the two."""
    src, dst = os.fsencode(source), os.fsencode(target)
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, src, _AT_FDCWD, dst, _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), os.fsdecode(src), None, os.fsdecode(dst))
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fsdecode(dst))
    os.rename(src, dst)


_AT_FDCWD, _RENAME_NOREPLACE = -100, 1
_renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(
    path: Path, data: bytes | str, *, mode: int = 0o644, sync_folder: bool = True
) -> Path:
    """Write `data` to `path` whole or not at all (replacing what was there). The folder is
    synced too (the rename is durable when this returns) unless `sync_folder` is False:
    a caller writing several files into one folder syncs it once itself."""
    tmp = temporary_for(path)
    write_new(tmp, data, mode=mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_folder:
        fsync_dir(path.parent)
    return path


def write_once(path: Path, data: bytes | str, *, mode: int = 0o644) -> bool:
    """Write `data` to `path` whole or not at all unless a file is there already, never
    replacing one (another process may have written it meanwhile): whether this call
    wrote it. Durable when it returns, the folder synced; not there if it raises."""
    tmp = temporary_for(path)
    write_new(tmp, data, mode=mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    try:
        fsync_dir(path.parent)
    except BaseException:
        path.unlink(missing_ok=True)  # ours: linked above
        raise
    return True


def temporary_for(path: Path) -> Path:
    """A fresh hidden name beside `path` to write it under before renaming it into place.
    It starts with a dot and ends in `.tmp`: clients and the spool's scans ignore such
    names, and a run killed half-way leaves only such a file, which
    `Spool.remove_stale_temporaries` and `remove_client_temporaries` clear."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def remove_stale(paths: list[Path], before_epoch: float) -> int:
    """Remove those of `paths` that are files last written before `before_epoch` (seconds
    since the epoch); how many were removed."""
    removed = 0
    for path in paths:
        try:
            if path.lstat().st_mtime < before_epoch and path.is_file():
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


write_in_place_attempts = 5


def write_in_place(
    path: Path, data: bytes | bytearray | str, *, mode: int = 0o644, sync: bool = True
) -> None:
    """Write `data` to `path` directly, replacing a file a stopped run left there. For a
    file no one reads before its writer moves it (a sidecar in work/): the move, not this
    write, is what others see, and the mover syncs the folder. Two processes writing the
    same sidecar (two passes shelving one batch) each replace it: the one that finds the
    other's between its removal and its creation removes it again."""
    for attempt in range(write_in_place_attempts):
        path.unlink(missing_ok=True)
        try:
            write_new(path, data, mode=mode, sync=sync)
            return
        except FileExistsError:
            if attempt + 1 == write_in_place_attempts:
                raise


def write_new(
    path: Path, data: bytes | bytearray | str, *, mode: int = 0o644, sync: bool = True
) -> None:
    """Create `path` (it must not exist) with `data`, synced unless the caller syncs it
    later (`sync_all`); removed again on failure."""
    write_new_from(path, (data.encode("utf-8") if isinstance(data, str) else data,),
                   mode=mode, sync=sync)  # fmt: skip


def write_new_from(
    path: Path, blocks: Iterable[bytes | bytearray], *, mode: int = 0o644, sync: bool = True
) -> None:
    """`write_new` of the bytes `blocks` yield as they come: a failure anywhere, the
    iterator's own included, removes the file again."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)  # the mode os.open was given is filtered by the umask
        for block in blocks:
            view = memoryview(block)
            while view:
                view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        if exc.filename is not None:
            raise
        # A write names no file: name it, so that a fault can be told whose folder it is in.
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


_syncers: ThreadPoolExecutor | None = None


def sync_all(paths: Iterable[Path]) -> None:
    """Sync `paths` — files (their contents) or folders (the names in them) — several at
    once; raises the first failure after all have been tried."""
    global _syncers
    paths = list(paths)
    if len(paths) <= 1:
        for path in paths:
            fsync_file(path)
        return
    if _syncers is None:
        _syncers = ThreadPoolExecutor(concurrent_syncs_max, thread_name_prefix="fsync")
    errors = [
        future.exception() for future in [_syncers.submit(fsync_file, p) for p in paths]
    ]
    for error in errors:
        if error is not None:
            raise error


def stop_syncing() -> None:
    """End the threads `sync_all` started: idle between calls, they would keep a command's
    process from leaving without the interpreter's teardown (`cli.console`)."""
    global _syncers
    if _syncers is not None:
        _syncers.shutdown()
        _syncers = None


def open_for_writing(path: Path) -> bool | None:
    """Whether some process holds `path` open for writing (an OpenSSH upload still in
    progress: internal-sftp writes in place); None where this cannot be told.

    Linux grants a read lease only on a file no one has open for writing. Taking one
    needs the file to be ours or CAP_LEASE (systemd/ekase-gateway.service grants it);
    without, or on a file system without leases, the answer is None.

    A writer opening the file in the instant the lease is held breaks it, and the kernel
    tells the holder by a signal: SIGIO, whose default is to end the process (an OpenSSH
    client's second `put` of a name killed the worker listing in/: a reviewer). It is
    told by SIGWINCH instead, which a process without a terminal ignores by default."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGWINCH)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        return True if exc.errno in (errno.EAGAIN, errno.EBUSY) else None
    else:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)


@contextlib.contextmanager
def folders_locked(folders: Collection[Path]) -> Iterator[None]:
    """Hold exclusive locks on `folders`, waiting for them, taken in name order (two
    processes locking overlapping sets never wait for each other in a circle). A
    folder that cannot be opened raises, as any use of it would."""
    with contextlib.ExitStack() as held:
        for folder in sorted(set(folders)):
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            held.callback(os.close, fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def locked(path: Path) -> Iterator[os.stat_result | None]:
    """Hold an exclusive lock on a claimed file: the locked file's stat (which file was
    locked: `same_file`), or None if another process holds it. The lock dies with its
    process, so a file left in work/ by a crash is free again."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield os.fstat(fd)
    finally:
        os.close(fd)


def same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
