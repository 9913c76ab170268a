"""`ekase-gateway status`: what an operator asks first — is anything stuck, did answers go out?

- each daemon: running (pid, heartbeat age) or not, from `<spool>/run/daemons/`;
- per client: files waiting in in/, uploads still under a temporary name, temporary
  uploads older than an hour (a client's upload that never finished: they stay until
  someone removes them), files claimed in work/, files processed today (local treasury
  day), and those rejected as a whole, repeated or run as trials today (as their shelves
  hold them), answers not yet delivered, and the last answer in out/;
- each file in progress with payments done of total and the rate, from
  `<spool>/run/progress/` (a file processed within a couple of seconds has none);
- pending payments per account: how many and their sum per currency;
- a fault of ours the daemon is waiting out (disk full, database away: from its heartbeat)
  and the files waiting on it, unanswered; files that failed on a defect of ours and wait
  for another try (`.attempts.json`), and those set aside in quarantine/ for a person.

It reads only (`open_reader`): no write lock, so it answers while a big file is being
processed; and it creates nothing, not even the spool of a fresh configuration.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, select

from gateway import db, installation, progress, signatures_kept, unconfigured, upload_temps
from gateway.clock import Clock, SystemClock
from gateway.errors import ConfigError
from gateway.faults import Active, describe, listed, wrong_database_url
from gateway.settings import Settings
from gateway.signatories import carried
from gateway.spool import (
    ERROR_SUFFIX,
    SIDECAR_SUFFIXES,
    Spool,
    is_ignored,
    stale_temporary_seconds,
)
from gateway.status_report import (
    AwaitingSignatures,
    ClientStatus,
    DaemonStatus,
    FileInProgress,
    PendingSum,
    Quarantined,
    StaleUpload,
    Status,
    render,
    to_json,
)
from ledger import sums
from ledger.currency import format_minor


class StatusSource(Protocol):
    """The part of an environment `collect` reads (`open_reader` gives one)."""

    settings: Settings
    engine: Engine
    spool: Spool


# -- reading ------------------------------------------------------------------------------------


def _scan_in(
    spool: Spool, client_id: str, now_epoch: float
) -> tuple[int, int, list[StaleUpload]]:
    """The client's files waiting in in/, and its uploads under temporary names in in/ and
    test/ (trials): being written, or stale."""
    waiting = uploading = 0
    stale: list[StaleUpload] = []
    for area, folder in (("in", spool.inbox(client_id)), ("test", spool.trial_box(client_id))):
        try:
            entries = list(os.scandir(folder))
        except OSError:  # gone, or refused (an operator's chmod): the daemon holds the client
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            if not is_ignored(entry.name):
                waiting += area == "in"
                continue
            age = now_epoch - info.st_mtime
            if age > stale_temporary_seconds or upload_temps.abandoned(Path(entry.path), now_epoch):
                stale.append(StaleUpload(client_id, entry.name, info.st_size, round(age), area))
            else:
                uploading += 1
    return waiting, uploading, sorted(stale, key=lambda s: (s.area, s.name))


def _count_shelved(spool: Spool, kind: str, client_id: str, day: dt.date) -> int:
    try:
        names = os.listdir(spool.shelf(kind, client_id, day))
    except OSError:  # none yet, or refused (an operator's chmod): the daemon holds the client
        return 0
    return sum(1 for n in names if not n.startswith(".") and not n.endswith(SIDECAR_SUFFIXES))


def _client_db(
    conn: Connection, client_id: str, day_start: dt.datetime
) -> tuple[int, int, str | None, dt.datetime | None]:
    f = db.files.c
    processed = conn.execute(
        select(func.count()).where(f.client_id == client_id, f.processed_at >= day_start)
    ).scalar_one()
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
        return int(processed), int(undelivered), None, None
    return int(processed), int(undelivered), str(last[0]), db.as_utc(last[1])


def _pending(conn: Connection, settings: Settings) -> list[PendingSum]:
    owner = {a.iban: c.id for c in settings.clients for a in c.accounts}
    if not owner:
        return []
    p = db.payments.c
    rows = conn.execute(
        select(p.debtor_iban, p.currency, func.count(), *sums.split_total(p.amount_minor))
        .where(p.debtor_iban.in_(sorted(owner)), p.status == "PDNG")
        .group_by(p.debtor_iban, p.currency)
        .order_by(p.debtor_iban, p.currency)
    ).all()
    return [
        PendingSum(owner[iban], iban, code, int(n), format_minor(sums.exact_total(*parts), code))
        for iban, code, n, *parts in rows
    ]


def _daemons(spool_dir: Path, now: dt.datetime, zone: ZoneInfo) -> tuple[DaemonStatus, ...]:
    """Every daemon on the spool by its heartbeat, those running first; times in `zone`."""
    found = [_daemon(beat, now, zone) for beat in progress.read_heartbeats(spool_dir)]
    return tuple(sorted(found, key=lambda d: d.state != "running"))


def _daemon(beat: progress.HeartbeatInfo, now: dt.datetime, zone: ZoneInfo) -> DaemonStatus:
    alive = beat.alive(now)
    age = round(beat.age_seconds(now), 1)
    if beat.running(now, alive):
        state = "running"
    elif alive:
        state = "not responding"
    else:
        state = "stopped"  # without removing its heartbeat: killed, or the machine stopped
    fault, held = (beat.fault, beat.held) if alive else (None, {})
    if fault is not None:  # shown in the treasury's time, as every other time (a tester)
        fault = dataclasses.replace(
            fault, since=fault.since.astimezone(zone), last=fault.last.astimezone(zone)
        )
    started = beat.started_at.astimezone(zone)
    return DaemonStatus(state, beat.pid, started, age, fault, beat.host, held)


def _waiting(
    spool: Spool, client_id: str, path: Path, fault: Active | None, booked: bool | None
) -> FileInProgress:
    """A claimed file no process reports progress on: booked already (`booked`: its answer
    delivered, only its shelf to come; False: its answer and its shelf to come), failed and
    retried, waiting for the daemon's fault to clear, or simply claimed (about to start, or
    left by a stopped run)."""
    original = path.name.split("__", 1)[-1]
    if booked is not None:
        return FileInProgress(client_id, original, path.name, "answered" if booked else "booked")
    failed = spool.attempts(path)
    if failed is not None:
        attempts, error = failed
        return FileInProgress(
            client_id, original, path.name, "failed", attempts=attempts, error=error
        )
    state = "waiting" if fault is not None else "claimed"
    return FileInProgress(client_id, original, path.name, state)


def _in_progress(
    spool: Spool, client_ids: Sequence[str], now: dt.datetime, fault: Active | None,
    booked: Booked,
) -> list[FileInProgress]:
    """The files in work/, and the due payments of a file being run (`pending`; a run
    whose process is gone leaves nothing to show: the next pass runs them again);
    `booked`: the files committed already (`_booked`)."""
    infos = progress.read_progress(spool.root)
    shown = {(p.client_id, p.claim_name): p for p in infos}
    found = [  # a file's due payments being run (`pending`): no file in work/ for them
        _processing(info, info.original_name, now) for info in infos
        if info.claim_name.startswith(progress.DUE_PREFIX) and progress.pid_alive(info.pid)
    ]  # fmt: skip
    for client_id in client_ids:
        for path in listed(spool.in_work, client_id) or []:
            original = path.name.split("__", 1)[-1]
            info = shown.get((client_id, path.name))
            done = booked.get((client_id, path.name))
            if done is not None or info is None or (
                fault is not None and not progress.pid_alive(info.pid)
            ):
                found.append(_waiting(spool, client_id, path, fault, done))
                continue
            found.append(_processing(info, original, now))
    return found


def _processing(info: progress.ProgressInfo, original: str, now: dt.datetime) -> FileInProgress:
    """A file some process reports progress on (stopped: its process is gone)."""
    return FileInProgress(
        info.client_id,
        original,
        info.claim_name,
        "processing" if progress.pid_alive(info.pid) else "stopped",
        done=info.done,
        total=info.total_declared,
        rate_per_second=info.rate_per_second,
        updated_seconds_ago=round(max(0.0, (now - info.updated_at).total_seconds()), 1),
    )


DbRow = tuple[int | None, int | None, str | None, dt.datetime | None]
Booked = dict[tuple[str, str], bool]  # (client, claim name) → its first answer delivered
NO_ROWS: DbRow = (0, 0, None, None)  # a client with nothing in the database today
UNKNOWN: DbRow = (None, None, None, None)  # the database could not be read


def _booked(conn: Connection, spool: Spool, client_ids: Sequence[str]) -> Booked:
    """The files in work/ that were committed already (found in gw_files by their claim
    name), by (client, claim name): whether their first answer was delivered (their
    shelving still to come) or not yet."""
    names = [p.name for client_id in client_ids for p in listed(spool.in_work, client_id) or []]
    if not names:
        return {}
    f, o = db.files.c, db.outbox.c
    rows = conn.execute(
        select(f.client_id, f.claim_name, o.delivered_at)
        .outerjoin(db.outbox, o.id == f.first_outbox_id)
        .where(f.claim_name.in_(names))
    )
    return {(client_id, name): delivered is not None for client_id, name, delivered in rows}


def _awaiting(conn: Connection) -> list[AwaitingSignatures]:
    """Batches waiting for signatures, with the signatures counted so far (SPEC §11), as
    the level rule counts them (`signatures_kept`)."""
    a, f = db.awaiting.c, db.files.c
    rows = conn.execute(
        select(a.id, a.client_id, a.file_id, f.msg_id, a.level, a.expires_on)
        .join(db.files, f.id == a.file_id)
        .where(a.state == "waiting")
        .order_by(a.expires_on, a.id)
    ).all()
    return [AwaitingSignatures(r.client_id, int(r.file_id), r.msg_id or "-", int(r.level),
                               len(carried(r.level, signatures_kept.counted_so_far(conn, r))),
                               r.expires_on)
            for r in rows]  # fmt: skip


def _from_database(
    env: StatusSource, ids: Sequence[str], day_start: dt.datetime
) -> tuple[dict[str, DbRow], list[PendingSum], str | None]:
    """What the database says per client, and pending payments; when it cannot be read
    (a fault of ours: the server down), nothing from it and why — the rest still shows."""
    from sqlalchemy.exc import DBAPIError

    try:
        with env.engine.connect() as conn:
            rows: dict[str, DbRow] = {
                client_id: _client_db(conn, client_id, day_start) for client_id in ids
            }
            return rows, _pending(conn, env.settings), None
    except DBAPIError as exc:
        return {}, [], describe(exc.orig if exc.orig is not None else exc)


def collect(env: StatusSource, clock: Clock) -> Status:
    settings = env.settings
    now = clock.now()
    local = now.astimezone(settings.timezone)
    today = local.date()
    day_start = dt.datetime.combine(today, dt.time(), settings.timezone).astimezone(dt.UTC)
    now_epoch = clock.wall()  # the age of uploads, against their modification times
    ids = [c.id for c in settings.clients]
    from_db, pending, database_error = _from_database(env, ids, day_start)
    awaiting: list[AwaitingSignatures] = []
    booked: Booked = {}
    if database_error is None:
        with env.engine.connect() as conn:
            awaiting = _awaiting(conn)
            booked = _booked(conn, env.spool, ids)
    clients = []
    stale: list[StaleUpload] = []
    for client_id in ids:
        waiting, uploading, old = _scan_in(env.spool, client_id, now_epoch)
        stale += old
        processed, undelivered, last, last_at = from_db.get(
            client_id, NO_ROWS if database_error is None else UNKNOWN
        )
        clients.append(
            ClientStatus(
                client_id=client_id,
                waiting=waiting,
                uploading=uploading,
                stale_uploads=len(old),
                in_progress=len(listed(env.spool.in_work, client_id) or []),
                processed_today=processed,
                # Rejected as a whole: what its shelf holds (a file whose every payment
                # was rejected, or cancelled, is answered payment by payment: archived).
                rejected_today=_count_shelved(env.spool, "rejected", client_id, today),
                duplicates_today=_count_shelved(env.spool, "duplicates", client_id, today),
                undelivered=undelivered,
                last_answer=last,
                last_answer_at=last_at.astimezone(settings.timezone) if last_at else None,
                trials_today=_count_shelved(env.spool, "trials", client_id, today),
            )
        )
    daemons = _daemons(settings.spool_dir, now, settings.timezone)
    daemon = daemons[0] if daemons else DaemonStatus("not running")
    return Status(
        day=today,
        now=local,
        daemon=daemon,
        daemons=daemons,
        clients=tuple(clients),
        in_progress=tuple(_in_progress(env.spool, ids, now, daemon.fault, booked)),
        pending=tuple(pending) if database_error is None else None,
        stale_uploads=tuple(stale),
        quarantined=tuple(q for client_id in ids for q in _quarantined(env.spool, client_id)),
        database_error=database_error,
        awaiting=tuple(awaiting),
        unconfigured=tuple((f.client_id, f.files) for f in unconfigured.folders(env.spool, ids)),
        one_writer=env.engine.dialect.name == "sqlite",
    )


def _quarantined(spool: Spool, client_id: str) -> list[Quarantined]:
    found = []
    for path in listed(spool.quarantined, client_id) or []:
        try:
            lines = path.with_name(path.name + ERROR_SUFFIX).read_text(errors="replace")
        except OSError:
            lines = ""
        last = [line.strip() for line in lines.splitlines() if line.strip()]
        found.append(Quarantined(client_id, path.name, last[-1] if last else "(no error file)"))
    return found


@dataclass
class _SpoolOnly:
    """What `status` reads when the database cannot be opened: the spool and heartbeat
    still tell the operator what waits (the engine fails on first use, and says why)."""

    settings: Settings
    engine: Engine
    spool: Spool


def main(settings: Settings, *, as_json: bool = False) -> int:
    """Print the status; exit 1 when the database could not be read (the rest is shown)."""
    from sqlalchemy.exc import DBAPIError

    from gateway.environment import make_reader_engine, open_reader

    env: StatusSource
    try:
        env = open_reader(settings)  # refuses another installation's spool
        try:
            installation.check_spool_there(settings.spool_dir)
        except BaseException:
            env.close()
            raise
    except DBAPIError as exc:
        wrong = wrong_database_url(exc)
        if wrong is not None:  # the configuration's mistake, as every command says it
            raise ConfigError("gateway.database_url", wrong) from exc
        env = _SpoolOnly(
            settings, make_reader_engine(settings.database_url), Spool(settings.spool_dir)
        )
    try:
        status = collect(env, SystemClock())
    finally:
        env.engine.dispose()
    print((to_json if as_json else render)(status), end="")
    return 0 if status.database_error is None else 1
