"""The few ways the gateway touches files, each in one place.

- `write_atomically`: a file appears whole or not at all — written under a hidden
  temporary name in the same folder, synced, renamed into place, the folder synced.
- `fsync_dir`: a rename is durable only once its folder is synced.
- `sha256_file`: a file's SHA-256 and size, read a block at a time (files of hundreds of
  MB are never held in memory).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import NamedTuple

hash_block_bytes = 1 << 20


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


def write_atomically(path: Path, data: bytes | str, *, mode: int = 0o644) -> Path:
    """Write `data` to `path` whole or not at all (replacing what was there).

    The temporary name starts with a dot and ends in `.tmp`: clients and the spool's
    scans ignore such names, and a run killed half-way leaves only such a file, which
    `Spool.remove_stale_temporaries` clears."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)  # the mode os.open was given is filtered by the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path
