"""What the daemon and a long file tell the outside while they work: `<spool>/run/`.

    run/daemons/<host>-<pid>.json      each daemon's heartbeat (two may share a spool): host,
                                       pid, started_at, heartbeat_at, and the fault it is
                                       waiting out, if any (`faults.Active`)
    run/progress/<client>__<claim>.json  a file being processed: payments done of total
                                       (`due-<file id>`: a file's due payments being run)

Both are small JSON documents replaced atomically (temporary name, `os.replace`), so
a reader such as `ekase-gateway status` — another process, without a database lock —
always sees a whole document (but for a heartbeat on a full disk: `Heartbeat`). Neither
is synced to disk: after a crash a stale one is recognised by its pid and age, and
nothing depends on it but what operators see.

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
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.clock import Clock
from gateway.faults import Active

progress_interval_seconds = 2.0  # between two progress files (and log lines) of one file
# The claim name a run of a file's due payments reports under (`pending`): no file in work/.
DUE_PREFIX = "due-"
heartbeat_interval_seconds = 5.0  # between two heartbeats of the daemon
# A heartbeat older than this means the daemon is not (or no longer) working: several
# missed beats, so that a busy moment of the event loop is not taken for a hang.
heartbeat_stale_seconds = 30.0
# Spaces kept at the end of each heartbeat file (it is padded to whole pages), so that the
# beat carrying a fault still fits over it in place when the disk is full (`Heartbeat`).
heartbeat_room_bytes = 2048
_PAGE_BYTES = 4096

RUN = "run"
DAEMONS = "daemons"
OLD_FILE = "daemon.json"  # the one heartbeat before two daemons each had their own
PROGRESS = "progress"


def run_dir(spool_dir: Path) -> Path:
    return spool_dir / RUN


def daemons_dir(spool_dir: Path) -> Path:
    return spool_dir / RUN / DAEMONS


def this_host() -> str:
    return socket.gethostname()


def progress_dir(spool_dir: Path) -> Path:
    return spool_dir / RUN / PROGRESS


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves no temporary behind, beat after beat
        raise


def _overwrite(path: Path, text: str) -> bool:
    """Write ASCII `text` over the bytes `path` has, padded with spaces to its size, in
    place: no new file and no new block. Whether it fitted and was written."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return False
    try:
        size = os.fstat(fd).st_size
        return len(text) <= size and os.pwrite(fd, text.ljust(size).encode(), 0) == size
    except OSError:
        return False
    finally:
        os.close(fd)


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
    host: str = ""  # where it runs: its pid means something only there
    # The clients held by a fault of their own folders: client id -> kind, error, path.
    held: dict[str, dict[str, str | int | None]] = field(default_factory=dict)

    def age_seconds(self, now: dt.datetime) -> float:
        return max(0.0, (now - self.heartbeat_at).total_seconds())

    def alive(self, now: dt.datetime) -> bool:
        """Whether its process exists: asked of this host's processes, judged by the age
        of its beat for another host's (a daemon there sharing the spool) and for an
        earlier release's, which names no host (a killed one's pid may be anyone's now)."""
        if self.host == this_host():
            return pid_alive(self.pid)
        return self.age_seconds(now) <= heartbeat_stale_seconds

    def running(self, now: dt.datetime, alive: bool) -> bool:
        """Running: its process exists and it beat recently."""
        return alive and self.age_seconds(now) <= heartbeat_stale_seconds


class Heartbeat:
    """`<spool>/run/daemons/<host>-<pid>.json`, this daemon's own, rewritten by its event
    loop every few seconds and removed when it stops cleanly. Each daemon on a spool has
    its own, so that one stopping never hides another that runs. At its start a daemon
    removes the heartbeats its host's killed daemons left (their pids are gone).

    A beat tells two readers two things, kept apart so that a full disk hides neither.
    `/healthz`, in this process, asks whether the event loop is alive: `beat()` notes the
    moment (`last`, judged by `fresh()`) before, and whether or not, the file is written.
    `status`, another process, reads the file, which must reach it above all when the
    spool's disk is full, the fault it has to show. So the file is padded with spaces
    (JSON allows them) to whole pages with `heartbeat_room_bytes` to spare, and a beat
    that cannot be written as a new file (no space, the quota reached) is written over the
    old one in place: those bytes are the file's already and need no new block (ext4, XFS,
    tmpfs). Only then may `status` read a beat half-written, and it reads again. Where even
    that fails (a copy-on-write filesystem such as btrfs or ZFS needs room for any write;
    a beat outgrew the room) the beat raises, the daemon logs `daemon.heartbeat_failed`
    and `status` says `not responding` once the file is 30 s old; `/healthz` stays 200."""

    def __init__(self, spool_dir: Path, clock: Clock, pid: int | None = None) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.host = this_host()
        self.path = daemons_dir(spool_dir) / f"{self.host}-{self.pid}.json"
        self.clock = clock
        self.started_at = clock.now()
        self.last: dt.datetime | None = None
        self.fault: Active | None = None  # set and cleared by the daemon's loop
        self.held: dict[str, dict[str, str | int | None]] = {}  # likewise (`HeartbeatInfo.held`)
        (run_dir(spool_dir) / OLD_FILE).unlink(missing_ok=True)
        for left in read_heartbeats(spool_dir):
            if left.host == self.host and left.pid != self.pid and not pid_alive(left.pid):
                (daemons_dir(spool_dir) / f"{left.host}-{left.pid}.json").unlink(missing_ok=True)

    def beat(self) -> None:
        now = self.last = self.clock.now()  # the loop is alive, whatever the disk says
        value: dict[str, Any] = {
            "host": self.host,
            "pid": self.pid,
            "started_at": self.started_at.isoformat(),
            "heartbeat_at": now.isoformat(),
        }
        if self.fault is not None:
            value["fault"] = self.fault.to_json()
        if self.held:
            value["held"] = self.held
        text = json.dumps(value)  # ASCII (json's default): as many bytes as characters
        size = -(-(len(text) + heartbeat_room_bytes) // _PAGE_BYTES) * _PAGE_BYTES
        try:
            _write_text(self.path, text.ljust(size))
        except OSError:
            if not _overwrite(self.path, text):  # no room for a new file: over the old one
                raise

    def fresh(self) -> bool:
        """Whether the event loop beat recently (`/healthz`), written to the spool or not."""
        if self.last is None:
            return False
        return (self.clock.now() - self.last).total_seconds() <= heartbeat_stale_seconds

    def stop(self) -> None:
        self.path.unlink(missing_ok=True)


def read_heartbeats(spool_dir: Path) -> list[HeartbeatInfo]:
    """Every daemon's heartbeat on the spool (an earlier release's too), the latest first."""
    try:
        paths = [*sorted(daemons_dir(spool_dir).glob("*.json")), run_dir(spool_dir) / OLD_FILE]
    except OSError:
        return []
    found = [info for path in paths if (info := _read_heartbeat_file(path)) is not None]
    return sorted(found, key=lambda b: b.heartbeat_at, reverse=True)


def _read_heartbeat_file(path: Path) -> HeartbeatInfo | None:
    # A beat written in place (a full disk) may be read half-written: read it again.
    for _ in range(3):
        if (info := _heartbeat_of(_read_json(path))) is not None:
            return info
    return None


def read_heartbeat(spool_dir: Path) -> HeartbeatInfo | None:
    """The heartbeat of the daemon that beat last, if any."""
    found = read_heartbeats(spool_dir)
    return found[0] if found else None


def _heartbeat_of(value: dict[str, Any] | None) -> HeartbeatInfo | None:
    if value is None:
        return None
    pid = value.get("pid")
    started = _moment(value.get("started_at"))
    beat = _moment(value.get("heartbeat_at"))
    host = value.get("host", "")  # (none in an earlier release's: judged by its age)
    if not isinstance(pid, int) or started is None or beat is None or not isinstance(host, str):
        return None
    held: dict[str, Any] = value["held"] if isinstance(value.get("held"), dict) else {}
    held = {  # as written: a count is a number, one not known null (`faults.ClientFault`)
        str(client_id): {str(k): v if v is None or type(v) is int else str(v) for k, v in
                         fault.items()} for client_id, fault in held.items()
        if isinstance(fault, dict)
    }  # fmt: skip
    return HeartbeatInfo(pid, started, beat, Active.from_json(value.get("fault")), host, held)


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
            value = {
                "client_id": self.client_id,
                "claim_name": self.claim_name,
                "original_name": self.original_name,
                "pid": os.getpid(),
                "done": done,
                "total_declared": self.total_declared,
                "started_at": self.started_at.isoformat(),
                "updated_at": now.isoformat(),
                "rate_per_second": round(rate, 1),
            }
            _write_text(self.path, json.dumps(value))
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
