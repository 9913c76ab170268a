"""The one place outbound files land in a client's folder.

Order matters to a client polling the folder: the seal (`NAME.sig`) is in place before
`NAME` appears, so a client never sees a file it cannot verify. Both arrive by rename
from a name starting with '.', which clients ignore; the seals of a round are renamed
and their folders synced before any of its files is renamed, so that after a crash the
seal is never missing under a delivered file.
Delivering the same name again after a crash keeps what the client may have fetched: a
file already in place with the same bytes, and its seal, stay as they are (a new seal
would be other bytes: another signing time); otherwise both are replaced.

A file written elsewhere and renamed into `out/` keeps the group it was made with;
where `out/` is setgid (an OpenSSH installation: the client's users read it through
the client's group), the file is given the folder's group first, as if made there.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from gateway.files import sha256_file, sync_all, temporary_for, write_new
from gateway.outbound.seal import Sealer, seal_path


class Delivery(NamedTuple):
    """A fully written file to move into a client's folder under its final name."""

    tmp: Path
    folder: Path
    name: str
    sha256: bytes | None  # its digest if the caller has it (`outbox.PlainCopy`)
    synced: bool = False  # its bytes are on disk already (`outbox.PlainCopy`)


def deliver(
    tmp_file: Path,
    folder: Path,
    name: str,
    sealer: Sealer | None,
    properties: Mapping[str, str] | None = None,
    sha256: bytes | None = None,
) -> Path:
    """Move the fully written `tmp_file` to `folder/name`, sealed. Returns the new path.

    `sealer=None` delivers unsealed; only tests of that mode do so."""
    deliver_all([Delivery(tmp_file, folder, name, sha256)], sealer, properties)
    return folder / name


def deliver_all(
    items: Sequence[Delivery], sealer: Sealer | None, properties: Mapping[str, str] | None = None
) -> None:
    """Move each file into its folder, sealed: first every seal (written, renamed, each
    folder synced), then every file (renamed, each folder synced), so that after a crash
    no delivered file is without its seal. The seals and the files are synced together
    before anything is renamed: a round costs one sync of its files and two of each
    folder, not several per file."""
    for item in items:
        _check_name(item.name)
    placed = [item for item in items if _in_place(item)]
    for item in placed:
        item.tmp.unlink(missing_ok=True)
    items = [item for item in items if item not in placed]
    folders = {item.folder for item in items}
    for folder, tmp_folder in {(item.folder, item.tmp.parent) for item in items}:
        _renamed_into(folder, tmp_folder)
    seals: list[tuple[Path, Path]] = []  # (written under a temporary name, final name)
    try:
        if sealer is not None:
            for item in items:
                seal = sealer.sign_file(
                    item.tmp, properties=properties, name=item.name, sha256=item.sha256
                )
                final = seal_path(item.folder / item.name)
                seals.append((temporary_for(final), final))
                write_new(seals[-1][0], seal, sync=False)
        sync_all([tmp for tmp, _ in seals] + [i.tmp for i in items if not i.synced])
        for tmp, final in seals:
            os.replace(tmp, final)
    finally:
        for tmp, _ in seals:
            tmp.unlink(missing_ok=True)  # not moved after all
    if seals:
        sync_all(folders)
    for item in items:
        tmp_stat, folder_stat = item.tmp.stat(), item.folder.stat()
        if folder_stat.st_mode & stat.S_ISGID and tmp_stat.st_gid != folder_stat.st_gid:
            os.chown(item.tmp, -1, folder_stat.st_gid)
        os.replace(item.tmp, item.folder / item.name)
    sync_all(folders)


def _renamed_into(folder: Path, spool_tmp: Path) -> None:
    """Answers are renamed into `folder` from the spool, never copied: a folder on another
    filesystem (a client's own mount) is refused before anything is sealed or moved."""
    if folder.stat().st_dev != spool_tmp.stat().st_dev:  # that client's fault (EXDEV)
        raise OSError(
            errno.EXDEV, f"not on the filesystem of {spool_tmp}: answers are moved in by "
            "rename, never copied", str(folder),
        )  # fmt: skip


def _in_place(item: Delivery) -> bool:
    """Whether `item` was delivered already, seal and all, with these very bytes (a crash
    after its renames, before it was marked delivered)."""
    final = item.folder / item.name
    if not (final.is_file() and seal_path(final).is_file()):
        return False
    ours = item.sha256.hex() if item.sha256 is not None else sha256_file(item.tmp).sha256
    return sha256_file(final).sha256 == ours


def _check_name(name: str) -> None:
    if not name or "/" in name or "\0" in name or name.startswith(".") or name == "..":
        raise ValueError(f"not a plain visible file name: {name!r}")
