"""The bytes each client has waiting, so that one client cannot fill the disk for all.

A client's waiting bytes are its complete files in `in/`, in `awaiting/<client>/`
(batches waiting for signatures) and in its `test/` folder, plus its uploads
still being written, over every session. The built-in server reserves bytes
as an upload grows and refuses the write that would take the client past its
limit (`[sftp] client_waiting_bytes_max`, or the client's own
`waiting_bytes_max`).

Counting the folders means reading them, so it is done when an upload starts
and again only before a refusal: between those the count can only be too
high (the gateway takes files away; uploads are reserved as they grow), and a
fresh count settles it. Everything runs on the server's event loop, so the
check and the reservation cannot interleave with another session's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from gateway.sftp.fs import is_internal_name


def waiting_folders(spool: Path, client_id: str) -> tuple[Path, ...]:
    """Where a client's files wait: `in/`, `awaiting/<client>/` and `test/` (the last two may
    not exist yet)."""
    client = spool / "clients" / client_id
    return client / "in", spool / "awaiting" / client_id, client / "test"


def bytes_in(folders: Iterable[Path]) -> int:
    """Bytes of the regular files below `folders`, uploads in progress left out."""
    total = 0
    pending = [str(folder) for folder in folders]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if is_internal_name(entry.name):
                        continue
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except FileNotFoundError:
                        continue  # taken away while we looked
        except (FileNotFoundError, NotADirectoryError):
            continue
    return total


class WaitingBytes:
    """Waiting bytes per client: files on disk, counted by `count`, plus uploads in flight."""

    def __init__(self, count: Callable[[str], int]) -> None:
        self._count = count
        self._on_disk: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}

    def recount(self, client_id: str) -> None:
        self._on_disk[client_id] = self._count(client_id)

    def waiting(self, client_id: str) -> int:
        if client_id not in self._on_disk:
            self.recount(client_id)
        return self._on_disk[client_id] + self._in_flight.get(client_id, 0)

    def reserve(self, client_id: str, nbytes: int, limit: int) -> bool:
        """Take `nbytes` more for an upload of `client_id`, unless that passes `limit`."""
        if self.waiting(client_id) + nbytes > limit:
            self.recount(client_id)  # files may have been taken in since the last count
            if self.waiting(client_id) + nbytes > limit:
                return False
        self._in_flight[client_id] = self._in_flight.get(client_id, 0) + nbytes
        return True

    def release(self, client_id: str, nbytes: int, *, kept: bool) -> None:
        """An upload ended: its `nbytes` are no longer in flight; `kept` means they now lie
        in `in/` as a complete file."""
        left = self._in_flight.get(client_id, 0) - nbytes
        assert left >= 0, f"released more than reserved for {client_id}"
        if left:
            self._in_flight[client_id] = left
        else:
            self._in_flight.pop(client_id, None)
        if kept and client_id in self._on_disk:
            self._on_disk[client_id] += nbytes

    def in_flight(self, client_id: str) -> int:
        return self._in_flight.get(client_id, 0)
