"""The built-in SFTP server's hidden uploads: `.upload-<16 hex>` in a client's in/ or test/.

The server writes each upload under such a name and renames it to the client's name
when the client closes it (`sftp.session`). From the moment it makes the file until
that rename (or until it discards the upload) it holds an exclusive `flock` on it. The
lock belongs to the open file, so it ends with the session that writes, and with the
daemon however it ends (SIGKILL included); and a new upload always makes a new name.
A hidden upload whose lock is free therefore has no writer and never will. A lock spans
processes, like the one on claims in work/ (`spool.locked`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets

UPLOAD_PREFIX = ".upload-"
# A new name is tried again only when another process took the lock of the one just made
# in the instant between making and locking it.
create_attempts_max = 3


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
        except (BlockingIOError, FileNotFoundError):
            pass  # another process is removing it as abandoned
        os.close(fd)
    raise BlockingIOError(errno.EAGAIN, "cannot make a hidden upload file; try again", folder)
