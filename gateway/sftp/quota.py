"""The bytes each client has waiting, so that one client cannot fill the disk for all.

A client's waiting bytes are its complete files in `in/`, in `awaiting/<client>/`
(batches waiting for signatures) and in its `test/` folder, plus its uploads
still being written, over every session. The built-in server reserves bytes
as an upload grows and refuses the write that would take the client past its
limit (`[sftp] client_waiting_bytes_max`, or the client's own
`waiting_bytes_max`).

A second process serving the same spool (SPEC §7) writes its uploads to hidden files
of its own in the same folders: a count takes them in at the size they have reached (and
files left behind by a stopped server, until the housekeeping removes them), leaving out
only this process's own, which are counted as reserved. So each process sees what the
others have written by its last count, and counts again before each reservation — a
client writing through two servers at once gets past its limit by no more than what
the other wrote since (a tester: 12,000 bytes waited against 10,000 when each server
knew only its own uploads).

Counting the folders means reading them, so it is done when an upload starts and
before each reservation, as often as its cost allows: between counts the count is
mostly too high (the gateway takes files away; uploads are reserved as they grow, and
those kept are added). It is too low by a batch counted while the gateway had it in
`work/` (not counted: it is being answered) on its way to `awaiting/`, until the next
count. Everything runs on the server's event loop, so the check and the reservation
cannot interleave with another session's of this process — and a count holds every
session up while it reads: a client with thousands of files waiting that opened again
and again, each open refused, had them read each time, and the server answered no other
client meanwhile (a tester). So a client's folders are read for at most a
`count_share_max`-th of the time: after a count that took t, the next waits
(count_share_max − 1)·t — for a few files next to nothing (room the gateway made, and
another process's upload growing, are seen at once), for many files long enough that
one client cannot hold the loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Container, Iterable
from pathlib import Path

from gateway.sftp.fs import is_internal_name


def waiting_folders(spool: Path, client_id: str) -> tuple[Path, ...]:
    """Where a client's files wait: `in/`, `awaiting/<client>/` and `test/` (the last two may
    not exist yet)."""
    client = spool / "clients" / client_id
    return client / "in", spool / "awaiting" / client_id, client / "test"


def usage_in(folders: Iterable[Path], own: Container[str] = frozenset()) -> tuple[int, int]:
    """Bytes and number of the regular files below `folders`, but for the hidden uploads
    this process is writing (their paths `own`: counted as they are reserved)."""
    total = files = 0
    # Resolved, as a session's paths are (`fs.confine`): a spool reached through a link
    # counted this process's uploads on disk too (a reviewer).
    pending = [os.path.realpath(folder) for folder in folders]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if is_internal_name(entry.name) and entry.path in own:
                        continue
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                            files += 1
                    except FileNotFoundError:
                        continue  # taken away while we looked
        except (FileNotFoundError, NotADirectoryError):
            continue
    return total, files


# Files a client may have waiting (complete or being uploaded), whatever their size: the
# bytes are bounded by the configuration, but empty files cost an inode and a directory
# entry each (a tester left 5,000 empty ones in a minute). Not configurable.
files_waiting_max = 10_000


count_share_max = 20  # a client's folders are read for at most 1/20 of the time


class WaitingBytes:
    """Waiting bytes per client: files on disk, counted by `count` (bytes, files), plus
    uploads in flight; and how many files that makes (`may_start`). `clock`: seconds of a
    monotonic clock, for how long a count took."""

    def __init__(
        self, count: Callable[[str], tuple[int, int]], clock: Callable[[], float]
    ) -> None:
        self._count = count
        self._clock = clock
        self._next_count: dict[str, float] = {}  # a client's folders are read again from
        self._on_disk: dict[str, int] = {}
        self._files_on_disk: dict[str, int] = {}
        self._uploading: dict[str, int] = {}  # uploads begun and not ended
        self._in_flight: dict[str, int] = {}

    def recount(self, client_id: str) -> None:
        """Count the client's folders afresh, unless the last count is too recent for
        what it cost (module docstring)."""
        start = self._clock()
        if client_id in self._on_disk and start < self._next_count[client_id]:
            return
        self._on_disk[client_id], self._files_on_disk[client_id] = self._count(client_id)
        end = self._clock()
        self._next_count[client_id] = end + max(0.0, end - start) * (count_share_max - 1)

    def may_start(self, client_id: str) -> str | None:
        """Count a new upload of `client_id` (the folders counted afresh, as often as their
        cost allows: an operator or the gateway may have changed them), or say why it
        may not begin."""
        self.recount(client_id)
        uploading = self._uploading.get(client_id, 0)
        if self._files_on_disk[client_id] + uploading >= files_waiting_max:
            return f"at most {files_waiting_max} files may wait, uploads included"
        self._uploading[client_id] = uploading + 1
        return None

    def waiting(self, client_id: str) -> int:
        if client_id not in self._on_disk:
            self.recount(client_id)
        return self._on_disk[client_id] + self._in_flight.get(client_id, 0)

    def reserve(self, client_id: str, nbytes: int, limit: int) -> bool:
        """Take `nbytes` more for an upload of `client_id`, unless that passes `limit`. The
        folders are counted afresh first, as often as their cost allows: files taken in
        make room, another process's uploads take it (module docstring)."""
        self.recount(client_id)
        if self.waiting(client_id) + nbytes > limit:
            return False
        self._in_flight[client_id] = self._in_flight.get(client_id, 0) + nbytes
        return True

    def release(self, client_id: str, nbytes: int, *, kept: bool) -> None:
        """An upload ended: its `nbytes` are no longer in flight; `kept` means they now lie
        in `in/` as a complete file."""
        self._uploading[client_id] = max(0, self._uploading.get(client_id, 0) - 1)
        left = self._in_flight.get(client_id, 0) - nbytes
        assert left >= 0, f"released more than reserved for {client_id}"
        if left:
            self._in_flight[client_id] = left
        else:
            self._in_flight.pop(client_id, None)
        if kept and client_id in self._on_disk:
            self._on_disk[client_id] += nbytes
            self._files_on_disk[client_id] += 1

    def in_flight(self, client_id: str) -> int:
        return self._in_flight.get(client_id, 0)
