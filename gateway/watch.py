"""Noticing waiting files: the watcher's hints, and when a file without a receipt is whole.

Watcher events are hints that save waiting for the daemon's rescan; the rescan is the
truth. A file uploaded through the built-in server has a receipt and is complete when
it becomes visible; one without (OpenSSH writes in place) is taken once it has not
changed for `settle_seconds`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from gateway.environment import Environment
from gateway.settings import Settings
from gateway.spool import is_ignored

log = structlog.get_logger("gateway.daemon")
# Files tracked for settling at once (per daemon); more are simply re-seen next pass.
settle_tracked_files_max = 10_000


@dataclass
class SettleTracker:
    """A file without an SFTP receipt is taken once it has stopped changing.

    Ready when its mtime is at least `settle_seconds` old, or when this process
    has seen the same size and mtime for `settle_seconds` (which also covers a
    file whose mtime lies in the future). Returns the seconds still to wait.
    """

    settle_seconds: float
    monotonic: Callable[[], float] = time.monotonic
    _seen: dict[str, tuple[int, int, float]] = field(default_factory=dict)

    def remaining(self, path: Path, size: int, mtime_ns: int, wall_now: float) -> float:
        if self.settle_seconds <= 0:
            return 0.0
        key = str(path)
        now = self.monotonic()
        seen = self._seen.get(key)
        if seen is None or seen[:2] != (size, mtime_ns):
            if len(self._seen) >= settle_tracked_files_max:
                self._seen.clear()
            self._seen[key] = (size, mtime_ns, now)
            unchanged_for = 0.0
        else:
            unchanged_for = now - seen[2]
        age = wall_now - mtime_ns / 1e9
        left = self.settle_seconds - max(age, unchanged_for)
        if left <= 0:
            self._seen.pop(key, None)
            return 0.0
        return left

    def forget_except(self, present: set[str]) -> None:
        for key in [k for k in self._seen if k not in present]:
            del self._seen[key]



def start_watcher(settings: Settings, env: Environment, hint: Callable[[], None]) -> Any:
    """A watchdog Observer on every client's in/; None if the platform refuses (rescan only).

    It asks the kernel only for what can make a file ready: a name appearing (created,
    moved in) and a file closed after writing. Not for the writes into a file (an
    OpenSSH upload woke the workers again and again while it lasted; it is taken once
    settled anyway), nor for the opens and reads of the workers' own claims (a dozen
    events a file, each handled by this process for nothing)."""
    from watchdog.events import (
        FileClosedEvent,
        FileCreatedEvent,
        FileMovedEvent,
        FileSystemEvent,
        FileSystemEventHandler,
    )
    from watchdog.observers import Observer

    # Only these reach the handler (no directory's: those are other classes).
    kinds: list[type[FileSystemEvent]] = [FileCreatedEvent, FileMovedEvent, FileClosedEvent]

    class Hint(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            path = event.dest_path if isinstance(event, FileMovedEvent) else event.src_path
            name = os.path.basename(os.fsdecode(path))
            if name and not is_ignored(name):
                hint()

    observer = Observer()
    handler = Hint()
    try:
        observer.start()
    except OSError as exc:  # e.g. no inotify here
        log.warning("watcher.unavailable", error=str(exc))
        return None
    # Watched one client at a time, the observer running: a folder that refuses (an
    # operator's chmod; the inotify watch limit reached) leaves that client to the rescans.
    for client in settings.clients:
        try:
            observer.schedule(handler, str(env.spool.inbox(client.id)), event_filter=kinds)
            trials = env.spool.trial_box(client.id)
            if trials.is_dir():  # /test (SPEC §15)
                observer.schedule(handler, str(trials), event_filter=kinds)
        except OSError as exc:
            log.warning("watcher.client_unwatched", client=client.id, error=str(exc))
    return observer
