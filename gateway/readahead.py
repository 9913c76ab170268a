"""`scan --once` starts reading its first file before it loads the database layer.

A `scan --once` process spends its first moments importing SQLAlchemy, the writers
and the seal. The reading child (`inbound/reader.py`) needs none of that, so the
command claims the oldest waiting file first — the one `Pipeline.process_waiting`
would take first — and forks its reader; the imports then happen while the child
parses. Only this light module and what it imports are loaded before the fork.

The claim is an ordinary one: the file is locked, moved into work/ with its receipt
(`Spool.claim`), and handed to the pipeline, which processes it with the reader
already running before anything else of the pass (`Pipeline.run_once(first=…)`).
If the process dies before that, the file waits in work/ like any file of a stopped
run, and the next run recovers it; the child ends at its next write to the pipe.
A file over the size limit is left for the pipeline (it is never parsed, only hashed), and
so is a small file (the pass reads it in-process).

A signature container first in line is not claimed here (the pass unzips it, it is
never parsed): what is read ahead instead is the waiting batch it signs (SPEC §11) —
the one in awaiting/ of the size its data file declares, found without the database —
which that container, or a later one of the same pass, may complete (`BatchAhead`). The
container that completes the batch takes the reading (`signature_run`): the batch's parse
then runs beside the imports, as a plain batch's does. A guess that no container takes
(one signature of two, or another batch of that size) is closed at the end of the pass;
the child, its queue full, will have waited.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway import arrival, reading
from gateway.errors import TransientError
from gateway.files import locked
from gateway.inbound import route
from gateway.inbound.reader import Reader, inline_bytes_max
from gateway.settings import Settings
from gateway.spool import Claim, Spool


@dataclass
class ReadAhead:
    """A claimed file, its lock, and the reader already reading it."""

    claim: Claim
    reader: Reader
    _lock: contextlib.ExitStack[Any]

    def release(self) -> None:
        """Close the reader (if it was not used) and drop the lock."""
        self.reader.close()
        self._lock.close()


@dataclass
class BatchAhead:
    """The waiting batch at `path` (in awaiting/), read ahead for the container that
    completes it; nothing is claimed or locked (the batch is read-only where it waits)."""

    path: Path
    reader: Reader | None

    def take(self, path: Path) -> Reader | None:
        """The reading, once, to the run of the batch at `path`; else None."""
        if path != self.path or self.reader is None:
            return None
        reader, self.reader = self.reader, None
        return reader

    def release(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None


def start(settings: Settings, now: dt.datetime) -> ReadAhead | BatchAhead | None:
    """Claim the oldest waiting file of the first client that has one and start reading
    it (a container: the batch it signs); None if nothing waits, the file is too big to
    read or small enough to read in-process, or another process has it; a client whose
    in/ cannot be listed is passed over."""
    spool = Spool(settings.spool_dir)
    for client in settings.clients:
        try:
            waiting = spool.waiting(client.id)
            trials = spool.waiting_trials(client.id) if waiting else []
        except OSError:  # its in/ refuses to be listed: the pass holds the client (`faults`)
            continue
        first = arrival.in_order(waiting[:1] + trials[:1], spool.receipt_of(client.id))[:1]
        if first and first[0].parent != spool.inbox(client.id):
            return None  # a trial came first: checked first (SPEC §15), nothing read ahead
        for path in waiting[:1]:
            if route.is_container(path, path.name):
                return _signed_batch(settings, spool.awaiting(client.id), path)
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                return None
            if not _worth_a_child(settings, size):
                return None
            lock = contextlib.ExitStack()
            try:
                locked_here = lock.enter_context(locked(path))
                claim = spool.claim(client.id, path, now, locked_here) if locked_here else None
                if claim is None:  # another process has it
                    lock.close()
                    return None
                reader = reading.child(claim.path, settings)
            except (TransientError, OSError):
                # Cannot fork now, or the client's in/ or work/ refuses: left to the pass,
                # which recovers a claim from work/ and holds a client whose folder refuses
                # (or, a fault of the machine, stops as it does).
                lock.close()
                return None
            except BaseException:
                lock.close()
                raise
            return ReadAhead(claim, reader, lock)
    return None


def _worth_a_child(settings: Settings, size: int) -> bool:
    """Whether a file of `size` bytes is read by a child: not over the size limit (never
    read) and not small (read in-process by the pass itself)."""
    return inline_bytes_max < size <= settings.max_file_bytes


def _signed_batch(settings: Settings, awaiting: Path, container: Path) -> BatchAhead | None:
    """The batch in `awaiting` that `container` signs, judged by its data file's declared
    size alone (the pass matches by SHA-256: a wrong guess is never taken), reading."""
    from gateway.inbound import asice

    size = asice.data_file_size(container)
    if size is None or not _worth_a_child(settings, size):
        return None
    try:
        same = [p for p in awaiting.iterdir() if p.is_file() and p.stat().st_size == size]
    except OSError:
        return None
    if len(same) != 1:
        return None
    try:
        reader = reading.child(same[0], settings)
    except TransientError:
        return None
    return BatchAhead(same[0], reader)
