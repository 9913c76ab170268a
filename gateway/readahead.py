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
A file over the size limit is left for the pipeline (it is never read), and so are a small
file (the pass reads it in-process) and a signature container (unzipped, not parsed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from dataclasses import dataclass
from typing import Any

from gateway.errors import TransientError
from gateway.inbound import route
from gateway.inbound.reader import Reader, inline_bytes_max
from gateway.outbound import pain002_v03
from gateway.settings import Settings
from gateway.spool import Claim, Spool, locked


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


def start(settings: Settings, now: dt.datetime) -> ReadAhead | None:
    """Claim the oldest waiting file of the first client that has one and start reading
    it; None if nothing waits, the file is too big to read, or another process has it."""
    spool = Spool(settings.spool_dir)
    for client in settings.clients:
        for path in spool.waiting(client.id)[:1]:
            if route.is_container_name(path.name):
                return None  # a signature container is unzipped by the pass, never parsed
            try:
                size = os.stat(path).st_size
                if size > settings.max_file_bytes or size <= inline_bytes_max:
                    return None  # never read, or read in-process by the pass itself
            except FileNotFoundError:
                return None
            lock = contextlib.ExitStack()
            try:
                if not lock.enter_context(locked(path)):
                    lock.close()
                    return None
                claim = spool.claim(client.id, path, now)
                if claim is None:
                    lock.close()
                    return None
                reader = Reader(
                    claim.path,
                    transactions_max=settings.max_transactions,
                    echo=pain002_v03.original,
                )
            except TransientError:
                lock.close()  # cannot fork now: the pass recovers the claim from work/
                return None
            except BaseException:
                lock.close()
                raise
            return ReadAhead(claim, reader, lock)
    return None
