"""Noticing waiting files: the watcher's hints, and when a file without a receipt is whole.

Watcher events are hints that save waiting for the daemon's rescan; the rescan is the
truth. A file uploaded through the built-in server has a receipt and is complete when
it becomes visible; one without (OpenSSH writes in place) is taken once it has not
changed for `settle_seconds`.
"""

from __future__ import annotations

import contextlib
import os
import threading
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



def start_watcher(
    settings: Settings, env: Environment, hint: Callable[[], None], every: float | None = None
) -> Watcher | None:
    """A watchdog Observer on every client's in/ and test/, looked at again every `every`
    seconds (the rescan's); None if the platform refuses (rescan only).

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
    try:
        observer.start()
    except OSError as exc:  # e.g. no inotify here
        log.warning("watcher.unavailable", error=str(exc))
        return None
    folders = [
        (c.id, folder) for c in settings.clients
        for folder in (env.spool.inbox(c.id), env.spool.trial_box(c.id))
    ]  # fmt: skip
    watcher = Watcher(observer, Hint(), kinds, folders, every or settings.rescan_seconds)
    watcher.refresh()
    watcher.start()
    return watcher


class Watcher:
    """The observer's watches, one per client's folder, kept up to date: a folder that
    refused to be watched (an operator's chmod; the inotify watch limit reached) leaves
    its client to the rescans until it can be watched, and one removed and made again
    (`Pipeline.restore_folders`: a new folder) is watched again — each without a restart.
    Said in the log once each way."""

    def __init__(
        self, observer: Any, handler: Any, kinds: list[Any], folders: list[tuple[str, Path]],
        every: float,
    ) -> None:
        self.observer, self.handler, self.kinds = observer, handler, kinds
        self.folders, self.every = folders, every
        self.watches: dict[Path, tuple[tuple[int, int], Any]] = {}  # by folder: its identity
        self.unwatched: set[Path] = set()
        self.stopped = threading.Event()
        self.looking = threading.Lock()  # a refresh, which `stop` waits for
        self.thread = threading.Thread(target=self._keep, name="watcher-refresh", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """No refresh schedules a watch once this has begun (one would outlive the
        observer, its emitter started while the observer was still stopping)."""
        with self.looking:
            self.stopped.set()
        self.observer.stop()

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)
        self.observer.join(timeout)

    def _keep(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                self.refresh()
            except Exception:  # never the daemon's end: the rescans are the truth
                log.exception("watcher.refresh_failed")

    def refresh(self) -> None:
        """Watch each folder that is there and not watched as it is now: its watch gone
        (the folder removed: watchdog's emitter stops) or on another folder."""
        with self.looking:
            if not self.stopped.is_set():
                self._refresh()

    def _refresh(self) -> None:
        alive = {emitter.watch for emitter in self.observer.emitters if emitter.is_alive()}
        for client_id, folder in self.folders:
            try:
                info = os.stat(folder)
            except FileNotFoundError:
                continue  # test/ not made (SPEC §15), or in/ gone until it is made again
            except OSError as exc:
                self._unwatched(client_id, folder, exc)
                continue
            identity = (info.st_dev, info.st_ino)
            old = self.watches.get(folder)
            if old is not None and old[0] == identity and old[1] in alive:
                continue
            if old is not None:
                with contextlib.suppress(KeyError, OSError):
                    self.observer.unschedule(old[1])
                del self.watches[folder]
            try:
                watch = self.observer.schedule(self.handler, str(folder), event_filter=self.kinds)
            except OSError as exc:
                self._unwatched(client_id, folder, exc)
                continue
            self.watches[folder] = (identity, watch)
            if folder in self.unwatched:
                self.unwatched.discard(folder)
                log.info("watcher.client_watched", client=client_id, folder=str(folder))

    def _unwatched(self, client_id: str, folder: Path, exc: OSError) -> None:
        if folder not in self.unwatched:
            self.unwatched.add(folder)
            log.warning("watcher.client_unwatched", client=client_id, folder=str(folder),
                        error=str(exc))  # fmt: skip
