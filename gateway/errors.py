"""Faults, as opposed to expected bad input (which is a value: a finding).

GatewayError
├── ConfigError          permanent: the configuration file is wrong (exit 2)
├── UsageError           permanent: the command line is wrong (exit 2)
├── SealError            permanent: signing key or certificate unusable
└── TransientError       worth retrying: database unreachable, disk full
    └── RunAgain         at once: another process recorded the same file meanwhile
"""

from __future__ import annotations

import errno
from pathlib import Path

# Why creating or opening a configured path failed, when the path itself is the mistake
# (no such folder, a file where a folder should be, not ours to write, a read-only mount):
# the configuration names something unusable. Anything else (a full disk, an I/O error)
# is a fault of the machine, retried as such.
PATH_MISTAKE_ERRNOS = frozenset(
    {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EACCES, errno.EPERM,
     errno.EROFS, errno.ELOOP, errno.ENAMETOOLONG}
)  # fmt: skip


class GatewayError(Exception):
    """Base of every fault the gateway raises on purpose."""


class ConfigError(GatewayError):
    """The configuration is wrong; the message names the key path."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


def path_mistake(key: str, doing: str, path: Path, exc: OSError) -> ConfigError | None:
    """The ConfigError naming `key` when `exc` (met `doing` `path`: "create", "open") says
    the configured path is unusable; None when it is a fault of the machine instead."""
    if exc.errno not in PATH_MISTAKE_ERRNOS:
        return None
    return ConfigError(key, f"cannot {doing} {exc.filename or path}: {exc.strerror or exc}")


class UsageError(GatewayError):
    """The command line asks for something impossible."""


class SealError(GatewayError):
    """The signing key or certificate cannot be used."""


class TransientError(GatewayError):
    """A fault that may pass: retry later."""


class RunAgain(TransientError):
    """Another process recorded what this run was about to (a file's bytes or its MsgId,
    two daemons on one database): a race, nobody's defect. The run is rolled back and
    done again at once, when it finds the other's row (`pipeline.Pipeline.run`)."""
