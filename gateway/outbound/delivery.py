"""The one place outbound files land in a client's folder.

Order matters to a client polling the folder: the seal (`NAME.sig`) is in place before
`NAME` appears, so a client never sees a file it cannot verify. Both arrive by rename
from a name starting with '.', which clients ignore, and the folder is fsynced after
each rename so that after a crash the seal is never missing under a delivered file.
Delivering the same name again replaces both (an idempotent resume after a crash).

A file written elsewhere and renamed into `out/` keeps the group it was made with;
where `out/` is setgid (an OpenSSH installation: the client's users read it through
the client's group), the file is given the folder's group first, as if made there.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from gateway.files import fsync_dir, fsync_file, write_atomically
from gateway.outbound.seal import Sealer, seal_path


def deliver(
    tmp_file: Path,
    folder: Path,
    name: str,
    sealer: Sealer | None,
    properties: Mapping[str, str] | None = None,
    sha256: bytes | None = None,
) -> Path:
    """Move the fully written `tmp_file` to `folder/name`, sealed. Returns the new path.

    `sha256` is the file's digest if the caller has it (`outbox.PlainCopy`).
    `sealer=None` delivers unsealed; only tests of that mode do so."""
    _check_name(name)
    tmp_stat, folder_stat = tmp_file.stat(), folder.stat()
    if tmp_stat.st_dev != folder_stat.st_dev:
        raise ValueError(f"{tmp_file} is not on the filesystem of {folder}; rename would copy")
    if folder_stat.st_mode & stat.S_ISGID and tmp_stat.st_gid != folder_stat.st_gid:
        os.chown(tmp_file, -1, folder_stat.st_gid)
    target = folder / name
    if sealer is not None:
        seal = sealer.sign_file(tmp_file, properties=properties, name=name, sha256=sha256)
        write_atomically(seal_path(target), seal)
    fsync_file(tmp_file)
    os.replace(tmp_file, target)
    fsync_dir(folder)
    return target


def _check_name(name: str) -> None:
    if not name or "/" in name or "\0" in name or name.startswith(".") or name == "..":
        raise ValueError(f"not a plain visible file name: {name!r}")
