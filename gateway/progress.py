"""What the daemon and a long file tell the outside while they work: `<spool>/run/`.

    run/daemon.json                    the daemon's heartbeat: pid, started_at, heartbeat_at,
                                       and the fault it is waiting out, if any (`faults.Active`)
    run/progress/<client>__<claim>.json  a file being processed: payments done of total

Both are small JSON documents replaced atomically (temporary name, `os.replace`), so
a reader such as `ekase-gateway status` — another process, without a database lock —
always sees a whole document. Neither is synced to disk: after a crash a stale one is
recognised by its pid and age, and nothing depends on it but what operators see.

A progress file is written at most every `progress_interval_seconds`, and the first
time only once that much time has passed: a file processed within the interval leaves
neither a progress file nor a `file.progress` log line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.clock import Clock
from gateway.faults import Active

progress_interval_seconds = 2.0  # between two progress files (and log lines) of one file
heartbeat_interval_seconds = 5.0  # between two heartbeats of the daemon
# A heartbeat older than this means the daemon is not (or no longer) working: several
# missed beats, so that a busy moment of the event loop is not taken for a hang.
heartbeat_stale_seconds = 30.0

RUN = "run"
DAEMON_FILE = "daemon.json"
PROGRESS = "progress"


def run_dir(spool_dir: Path) -> Path:
    return spool_dir / RUN


def progress_dir(spool_dir: Path) -> Path:
    return spool_dir / RUN / PROGRESS


def _write_json(path: Path, value: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(json.dumps(value), encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves no temporary behind, beat after beat
        raise


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _moment(text: object) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (it may belong to another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- the daemon's heartbeat --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeartbeatInfo:
    pid: int
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    fault: Active | None = None  # the fault of ours the daemon is waiting out

    def age_seconds(self, now: dt.datetime) -> float:
        return max(0.0, (now - self.heartbeat_at).total_seconds())

    def running(self, now: dt.datetime, alive: bool) -> bool:
        """Running: its process exists and it beat recently."""
        return alive and self.age_seconds(now) <= heartbeat_stale_seconds


class Heartbeat:
    """`<spool>/run/daemon.json`, rewritten by the daemon's event loop every few seconds
    and removed when the daemon stops cleanly."""

    def __init__(self, spool_dir: Path, clock: Clock, pid: int | None = None) -> None:
        self.path = run_dir(spool_dir) / DAEMON_FILE
        self.clock = clock
        self.pid = os.getpid() if pid is None else pid
        self.started_at = clock.now()
        self.last: dt.datetime | None = None
        self.fault: Active | None = None  # set and cleared by the daemon's loop

    def beat(self) -> None:
        now = self.clock.now()
        value: dict[str, Any] = {
            "pid": self.pid,
            "started_at": self.started_at.isoformat(),
            "heartbeat_at": now.isoformat(),
        }
        if self.fault is not None:
            value["fault"] = self.fault.to_json()
        _write_json(self.path, value)
        self.last = now

    def fresh(self) -> bool:
        """Whether the loop beat recently (`/healthz`)."""
        if self.last is None:
            return False
        return (self.clock.now() - self.last).total_seconds() <= heartbeat_stale_seconds

    def stop(self) -> None:
        # Another daemon on the same spool may have written it since: only ours goes.
        found = read_heartbeat(self.path.parent.parent)
        if found is not None and found.pid == self.pid:
            self.path.unlink(missing_ok=True)


def read_heartbeat(spool_dir: Path) -> HeartbeatInfo | None:
    value = _read_json(run_dir(spool_dir) / DAEMON_FILE)
    if value is None:
        return None
    pid = value.get("pid")
    started = _moment(value.get("started_at"))
    beat = _moment(value.get("heartbeat_at"))
    if not isinstance(pid, int) or started is None or beat is None:
        return None
    return HeartbeatInfo(pid, started, beat, Active.from_json(value.get("fault")))


# -- a file in progress ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProgressInfo:
    """One `run/progress/*.json`, as `status` reads it."""

    client_id: str
    claim_name: str
    original_name: str
    pid: int
    done: int
    total_declared: int | None
    started_at: dt.datetime
    updated_at: dt.datetime
    rate_per_second: float


class FileProgress:
    """Payments done of total for one file being processed.

    `advance(done)` is meant to be called after every chunk: it only compares the
    clock with the time of the last write unless `interval_seconds` has passed, and
    then writes the progress file and logs `file.progress`. `close()` removes the file.
    """

    def __init__(
        self,
        spool_dir: Path,
        client_id: str,
        claim_name: str,
        original_name: str,
        total_declared: int | None,
        clock: Clock,
        *,
        interval_seconds: float | None = None,
    ) -> None:
        self.path = progress_dir(spool_dir) / f"{client_id}__{claim_name}.json"
        self.client_id = client_id
        self.claim_name = claim_name
        self.original_name = original_name
        self.total_declared = total_declared
        self.clock = clock
        self.interval = progress_interval_seconds if interval_seconds is None else interval_seconds
        self.started_at = clock.now()
        self.done = 0
        self._last_shown = self.started_at
        self._written = False
        import structlog  # here: `status` reads progress files and need not load it

        self._log = structlog.get_logger("gateway.progress")

    def advance(self, done: int) -> None:
        self.done = done
        now = self.clock.now()
        if (now - self._last_shown).total_seconds() < self.interval:
            return
        self._last_shown = now
        elapsed = (now - self.started_at).total_seconds()
        rate = done / elapsed if elapsed > 0 else 0.0
        try:
            _write_json(
                self.path,
                {
                    "client_id": self.client_id,
                    "claim_name": self.claim_name,
                    "original_name": self.original_name,
                    "pid": os.getpid(),
                    "done": done,
                    "total_declared": self.total_declared,
                    "started_at": self.started_at.isoformat(),
                    "updated_at": now.isoformat(),
                    "rate_per_second": round(rate, 1),
                },
            )
            self._written = True
        except OSError as exc:
            # What operators see never stops the file itself (a full disk: if the file's
            # own writes fail too, that is the fault the file waits on).
            self._log.warning("file.progress_unwritten", file=self.original_name, error=str(exc))
        self._log.info(
            "file.progress",
            client=self.client_id,
            file=self.original_name,
            payments_done=done,
            payments_total=self.total_declared,
            rate_per_second=round(rate, 1),
            elapsed_seconds=round(elapsed, 1),
        )

    def close(self) -> None:
        if self._written:
            self.path.unlink(missing_ok=True)


def read_progress(spool_dir: Path) -> list[ProgressInfo]:
    """Every progress file, whatever state its writer is in (the caller judges)."""
    found = []
    try:
        paths = sorted(progress_dir(spool_dir).glob("*.json"))
    except OSError:
        return []
    for path in paths:
        value = _read_json(path)
        if value is None:
            continue
        started = _moment(value.get("started_at"))
        updated = _moment(value.get("updated_at"))
        total = value.get("total_declared")
        try:
            info = ProgressInfo(
                client_id=str(value["client_id"]),
                claim_name=str(value["claim_name"]),
                original_name=str(value["original_name"]),
                pid=int(value["pid"]),
                done=int(value["done"]),
                total_declared=total if isinstance(total, int) else None,
                started_at=started or updated or dt.datetime.min.replace(tzinfo=dt.UTC),
                updated_at=updated or dt.datetime.min.replace(tzinfo=dt.UTC),
                rate_per_second=float(value.get("rate_per_second") or 0.0),
            )
        except (KeyError, TypeError, ValueError):
            continue
        found.append(info)
    return found


def remove_orphaned_progress(spool_dir: Path) -> int:
    """Progress files of processes that no longer exist (killed while processing)."""
    removed = 0
    for info in read_progress(spool_dir):
        if not pid_alive(info.pid):
            path = progress_dir(spool_dir) / f"{info.client_id}__{info.claim_name}.json"
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    return removed
