"""`ekase-gateway status`: what an operator asks first — is anything stuck, did answers go out?

Per client: files waiting in in/ (and uploads still under a temporary name),
files in progress in work/, files processed and rejected today (local treasury
day, from `gw_files`), answers not yet delivered, and the last answer written
into out/ (from `gw_outbox`). Reading only; safe while the daemon runs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from gateway import db
from gateway.environment import Environment
from gateway.settings import Settings
from gateway.spool import Spool, is_ignored


@dataclass(frozen=True, slots=True)
class ClientStatus:
    client_id: str
    waiting: int  # complete files in in/
    uploading: int  # files in in/ still under a temporary name (.part, dotfiles …)
    in_progress: int  # claimed files in work/
    processed_today: int  # answered today, whatever the outcome
    rejected_today: int  # of those, rejected as a whole (group status RJCT)
    undelivered: int  # answers owed to the client but not yet in out/
    last_answer: str | None
    last_answer_at: dt.datetime | None  # local treasury time


def _count_in(spool: Spool, client_id: str) -> tuple[int, int]:
    waiting = uploading = 0
    try:
        entries = list(os.scandir(spool.inbox(client_id)))
    except FileNotFoundError:
        return 0, 0
    for entry in entries:
        if not entry.is_file(follow_symlinks=False):
            continue
        if is_ignored(entry.name):
            uploading += 1
        else:
            waiting += 1
    return waiting, uploading


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


def collect(env: Environment, now: dt.datetime) -> list[ClientStatus]:
    settings: Settings = env.settings
    local = now.astimezone(settings.timezone)
    day_start = dt.datetime.combine(local.date(), dt.time(), settings.timezone).astimezone(dt.UTC)
    result = []
    with env.engine.connect() as conn:
        for client in settings.clients:
            waiting, uploading = _count_in(env.spool, client.id)
            processed, rejected, undelivered, last, last_at = _client_db(
                conn, client.id, day_start
            )
            result.append(
                ClientStatus(
                    client_id=client.id,
                    waiting=waiting,
                    uploading=uploading,
                    in_progress=len(env.spool.in_work(client.id)),
                    processed_today=processed,
                    rejected_today=rejected,
                    undelivered=undelivered,
                    last_answer=last,
                    last_answer_at=last_at.astimezone(settings.timezone) if last_at else None,
                )
            )
    return result


HEADERS = ("client", "waiting", "uploading", "in progress", "processed today",
           "rejected today", "undelivered", "last answer")


def render(statuses: Sequence[ClientStatus], day: dt.date) -> str:
    """A plain table, one line per client (pure: for the terminal and for tests)."""
    rows = [HEADERS]
    for s in statuses:
        last = "-"
        if s.last_answer is not None and s.last_answer_at is not None:
            last = f"{s.last_answer} at {s.last_answer_at:%Y-%m-%d %H:%M:%S}"
        rows.append((
            s.client_id, str(s.waiting), str(s.uploading), str(s.in_progress),
            str(s.processed_today), str(s.rejected_today), str(s.undelivered), last,
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS) - 1)]
    lines = [f"today: {day.isoformat()}"]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"


def to_json(statuses: Sequence[ClientStatus], day: dt.date) -> str:
    def plain(s: ClientStatus) -> dict[str, Any]:
        value = asdict(s)
        value["last_answer_at"] = s.last_answer_at.isoformat() if s.last_answer_at else None
        return value

    return json.dumps({"day": day.isoformat(), "clients": [plain(s) for s in statuses]}) + "\n"


def main(settings: Settings, *, as_json: bool = False) -> int:
    from gateway.environment import open_environment

    env = open_environment(settings, need_sealer=False)
    try:
        now = env.clock.now()
        statuses = collect(env, now)
    finally:
        env.close()
    day = now.astimezone(settings.timezone).date()
    print((to_json if as_json else render)(statuses, day), end="")
    return 0
