"""`ekase-gateway status`: what an operator asks first — is anything stuck, did answers go out?

- the daemon: running (pid, heartbeat age) or not, from `<spool>/run/daemon.json`;
- per client: files waiting in in/, uploads still under a temporary name, temporary
  uploads older than an hour (a client's upload that never finished: they stay until
  someone removes them), files claimed in work/, files processed, rejected and repeated
  today (local treasury day), answers not yet delivered, and the last answer in out/;
- each file in progress with payments done of total and the rate, from
  `<spool>/run/progress/` (a file processed within a couple of seconds has none);
- pending payments per account: how many and their sum per currency.

It reads only (`open_reader`): no write lock, so it answers while a big file is being
processed; and it creates nothing, not even the spool of a fresh configuration.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, func, select

from gateway import db, progress
from gateway.settings import Settings
from gateway.spool import SIDECAR_SUFFIXES, Spool, is_ignored, stale_temporary_seconds
from ledger.currency import format_minor


class StatusSource(Protocol):
    """The part of an environment `collect` reads (`open_reader` gives one)."""

    settings: Settings
    engine: Engine
    spool: Spool


@dataclass(frozen=True, slots=True)
class DaemonStatus:
    state: str  # running | not responding | stopped | not running
    pid: int | None = None
    started_at: dt.datetime | None = None
    heartbeat_age_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class ClientStatus:
    client_id: str
    waiting: int  # complete files in in/
    uploading: int  # files in in/ still under a temporary name, written to within the hour
    stale_uploads: int  # temporary names older than an hour: an upload that never finished
    in_progress: int  # claimed files in work/
    processed_today: int  # answered today, whatever the outcome
    rejected_today: int  # of those, rejected as a whole (group status RJCT)
    duplicates_today: int  # the same bytes uploaded again, answered with the original report
    undelivered: int  # answers owed to the client but not yet in out/
    last_answer: str | None
    last_answer_at: dt.datetime | None  # local treasury time


@dataclass(frozen=True, slots=True)
class FileInProgress:
    client_id: str
    file: str  # the name the client gave it
    claim: str  # its name in work/
    state: str  # processing | claimed | stopped (its process is gone: the next run resumes)
    done: int | None = None
    total: int | None = None  # as the file declares it (NbOfTxs)
    rate_per_second: float | None = None
    updated_seconds_ago: float | None = None


@dataclass(frozen=True, slots=True)
class PendingSum:
    client_id: str
    iban: str
    currency: str
    count: int
    amount: str  # decimal, in `currency`


@dataclass(frozen=True, slots=True)
class StaleUpload:
    client_id: str
    name: str
    size_bytes: int
    age_seconds: float


@dataclass(frozen=True, slots=True)
class Status:
    day: dt.date
    now: dt.datetime  # local treasury time
    daemon: DaemonStatus
    clients: tuple[ClientStatus, ...]
    in_progress: tuple[FileInProgress, ...]
    pending: tuple[PendingSum, ...]
    stale_uploads: tuple[StaleUpload, ...]


# -- reading ------------------------------------------------------------------------------------


def _scan_in(
    spool: Spool, client_id: str, now_epoch: float
) -> tuple[int, int, list[StaleUpload]]:
    waiting = uploading = 0
    stale: list[StaleUpload] = []
    try:
        entries = list(os.scandir(spool.inbox(client_id)))
    except FileNotFoundError:
        return 0, 0, []
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(info.st_mode):
            continue
        if not is_ignored(entry.name):
            waiting += 1
            continue
        age = now_epoch - info.st_mtime
        if age > stale_temporary_seconds:
            stale.append(StaleUpload(client_id, entry.name, info.st_size, round(age)))
        else:
            uploading += 1
    return waiting, uploading, sorted(stale, key=lambda s: s.name)


def _count_shelved(spool: Spool, kind: str, client_id: str, day: dt.date) -> int:
    try:
        names = os.listdir(spool.shelf(kind, client_id, day))
    except FileNotFoundError:
        return 0
    return sum(1 for n in names if not n.startswith(".") and not n.endswith(SIDECAR_SUFFIXES))


def _as_utc(value: dt.datetime) -> dt.datetime:
    # SQLite returns naive datetimes; the gateway stores every timestamp in UTC.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _client_db(
    conn: Connection, client_id: str, day_start: dt.datetime
) -> tuple[int, int, int, str | None, dt.datetime | None]:
    f = db.files.c
    rows = conn.execute(
        select(f.group_status, func.count())
        .where(f.client_id == client_id, f.processed_at >= day_start)
        .group_by(f.group_status)
    ).all()
    processed = sum(int(n) for _, n in rows)
    rejected = sum(int(n) for status, n in rows if status == "RJCT")
    o = db.outbox.c
    undelivered = conn.execute(
        select(func.count()).where(o.client_id == client_id, o.delivered_at.is_(None))
    ).scalar_one()
    last = conn.execute(
        select(o.file_name, o.delivered_at)
        .where(o.client_id == client_id, o.delivered_at.is_not(None))
        .order_by(o.delivered_at.desc(), o.id.desc())
        .limit(1)
    ).first()
    if last is None:
        return processed, rejected, int(undelivered), None, None
    return processed, rejected, int(undelivered), str(last[0]), _as_utc(last[1])


def _pending(conn: Connection, settings: Settings) -> list[PendingSum]:
    owner = {a.iban: c.id for c in settings.clients for a in c.accounts}
    if not owner:
        return []
    p = db.payments.c
    rows = conn.execute(
        select(p.debtor_iban, p.currency, func.count(), func.coalesce(func.sum(p.amount_minor), 0))
        .where(p.debtor_iban.in_(sorted(owner)), p.status == "PDNG")
        .group_by(p.debtor_iban, p.currency)
        .order_by(p.debtor_iban, p.currency)
    ).all()
    return [
        PendingSum(owner[iban], iban, code, int(n), format_minor(int(total), code))
        for iban, code, n, total in rows
    ]


def _daemon(spool_dir: Path, now: dt.datetime) -> DaemonStatus:
    beat = progress.read_heartbeat(spool_dir)
    if beat is None:
        return DaemonStatus("not running")
    alive = progress.pid_alive(beat.pid)
    age = round(beat.age_seconds(now), 1)
    if beat.running(now, alive):
        state = "running"
    elif alive:
        state = "not responding"
    else:
        state = "stopped"  # without removing its heartbeat: killed, or the machine stopped
    return DaemonStatus(state, beat.pid, beat.started_at, age)


def _in_progress(
    spool: Spool, client_ids: Sequence[str], now: dt.datetime
) -> list[FileInProgress]:
    shown = {(p.client_id, p.claim_name): p for p in progress.read_progress(spool.root)}
    found = []
    for client_id in client_ids:
        for path in spool.in_work(client_id):
            original = path.name.split("__", 1)[-1]
            info = shown.get((client_id, path.name))
            if info is None:
                found.append(FileInProgress(client_id, original, path.name, "claimed"))
                continue
            state = "processing" if progress.pid_alive(info.pid) else "stopped"
            found.append(
                FileInProgress(
                    client_id,
                    original,
                    path.name,
                    state,
                    done=info.done,
                    total=info.total_declared,
                    rate_per_second=info.rate_per_second,
                    updated_seconds_ago=round(max(0.0, (now - info.updated_at).total_seconds()), 1),
                )
            )
    return found


def collect(env: StatusSource, now: dt.datetime) -> Status:
    settings = env.settings
    local = now.astimezone(settings.timezone)
    today = local.date()
    day_start = dt.datetime.combine(today, dt.time(), settings.timezone).astimezone(dt.UTC)
    now_epoch = now.timestamp()
    ids = [c.id for c in settings.clients]
    clients = []
    stale: list[StaleUpload] = []
    with env.engine.connect() as conn:
        for client_id in ids:
            waiting, uploading, old = _scan_in(env.spool, client_id, now_epoch)
            stale += old
            processed, rejected, undelivered, last, last_at = _client_db(
                conn, client_id, day_start
            )
            clients.append(
                ClientStatus(
                    client_id=client_id,
                    waiting=waiting,
                    uploading=uploading,
                    stale_uploads=len(old),
                    in_progress=len(env.spool.in_work(client_id)),
                    processed_today=processed,
                    rejected_today=rejected,
                    duplicates_today=_count_shelved(env.spool, "duplicates", client_id, today),
                    undelivered=undelivered,
                    last_answer=last,
                    last_answer_at=last_at.astimezone(settings.timezone) if last_at else None,
                )
            )
        pending = _pending(conn, settings)
    return Status(
        day=today,
        now=local,
        daemon=_daemon(settings.spool_dir, now),
        clients=tuple(clients),
        in_progress=tuple(_in_progress(env.spool, ids, now)),
        pending=tuple(pending),
        stale_uploads=tuple(stale),
    )


# -- showing (pure) -----------------------------------------------------------------------------

HEADERS = ("client", "waiting", "uploading", "stale uploads", "in progress", "processed today",
           "rejected today", "duplicates today", "undelivered", "last answer")


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return lines


def _daemon_line(d: DaemonStatus) -> str:
    if d.pid is None:
        return "daemon: not running (no heartbeat in run/daemon.json)"
    started = f", started {d.started_at:%Y-%m-%d %H:%M:%S %Z}" if d.started_at else ""
    age = f"last heartbeat {d.heartbeat_age_seconds:g} s ago"
    return f"daemon: {d.state} (pid {d.pid}{started}, {age})"


def _progress_line(f: FileInProgress) -> str:
    if f.state == "claimed":
        return f"  {f.client_id}  {f.file}: claimed, no progress reported yet"
    total = f"{f.total:,}" if f.total is not None else "?"
    share = f" ({100 * (f.done or 0) // f.total}%)" if f.total else ""
    line = (
        f"  {f.client_id}  {f.file}: {f.done or 0:,} of {total} payments{share}, "
        f"{f.rate_per_second or 0:,.0f}/s, updated {f.updated_seconds_ago:g} s ago"
    )
    if f.state == "stopped":
        line += " — its process is gone; the next run processes the file again"
    return line


def render(status: Status) -> str:
    """Plain text for the terminal (pure: for tests too)."""
    lines = [f"today: {status.day.isoformat()}", _daemon_line(status.daemon), ""]
    rows: list[Sequence[str]] = [HEADERS]
    for s in status.clients:
        last = "-"
        if s.last_answer is not None and s.last_answer_at is not None:
            last = f"{s.last_answer} at {s.last_answer_at:%Y-%m-%d %H:%M:%S}"
        rows.append((
            s.client_id, str(s.waiting), str(s.uploading), str(s.stale_uploads),
            str(s.in_progress), str(s.processed_today), str(s.rejected_today),
            str(s.duplicates_today), str(s.undelivered), last,
        ))
    lines += _table(rows)
    if status.in_progress:
        lines += ["", "in progress:"]
        lines += [_progress_line(f) for f in status.in_progress]
    if status.pending:
        lines += ["", "pending payments:"]
        lines += [
            f"  {p.client_id}  {p.iban}  {p.count} payment(s)  {p.amount} {p.currency}"
            for p in status.pending
        ]
    if status.stale_uploads:
        lines += ["", "stale temporary uploads (unfinished for over an hour; remove or rename):"]
        lines += [
            f"  {u.client_id}  in/{u.name}  {u.size_bytes:,} bytes, "
            f"{u.age_seconds / 3600:.1f} h old"
            for u in status.stale_uploads
        ]
    return "\n".join(lines) + "\n"


def to_json(status: Status) -> str:
    def plain(value: Any) -> Any:
        if isinstance(value, dt.datetime | dt.date):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return json.dumps(plain(asdict(status))) + "\n"


def main(settings: Settings, *, as_json: bool = False) -> int:
    from gateway.environment import open_reader

    env = open_reader(settings)
    try:
        status = collect(env, env.clock.now())
    finally:
        env.close()
    print((to_json if as_json else render)(status), end="")
    return 0
