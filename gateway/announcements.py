"""Large-payment days in the database: the announcements staff record (`ekase-gateway
announce`, table `gw_announcements`), the automatic ones (the payments known by the
deadline, and the batches that arrived by then and still wait for signatures,
`gw_awaiting_eur`), and what each file puts into a day (`gw_file_days`, kept by
`refresh_days`), which the gate reads in one query. The rule is `large_days`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, and_, bindparam, case, delete, func, insert, select

from gateway import db, large_days
from gateway.awaiting_shelf import WAITING
from ledger import calendar, sums
from ledger.engine import writing

t = db.announcements
_a, _e, _p, _f = db.awaiting.c, db.awaiting_eur.c, db.payments.c, db.files.c

# The statements every file's gate runs, built once per process (SQLAlchemy keeps their
# compiled form): what staff recorded, and the EUR of waiting batches, each also a column
# of the gate's one query. A batch waiting for signatures that arrived by the deadline was
# known to the treasury from its upload and counts as announced; once authorised, its
# payments count instead (their file keeps its arrival time); an expired batch never
# executes and no longer counts.
_MANUAL = select(t.c.amount_minor).where(
    t.c.client_id == bindparam("client_id"), t.c.business_date == bindparam("day")
)
_AWAITING = [
    select(part)
    .select_from(db.awaiting_eur.join(db.awaiting, _a.id == _e.awaiting_id))
    .where(
        _a.client_id == bindparam("client_id"),
        _a.state == WAITING,
        _a.received_at <= bindparam("deadline_at"),
        _e.business_date == bindparam("day"),
    )
    .scalar_subquery()
    for part in sums.split_total(_e.amount_minor)
]


def record(
    engine: Engine, client_id: str, day: dt.date, amount_minor: int, now: dt.datetime
) -> int | None:
    """Record what `client_id` announced for `day` (EUR, minor units), replacing an
    earlier announcement; returns the amount it replaced, if any."""
    assert amount_minor >= 0
    key = and_(t.c.client_id == client_id, t.c.business_date == day)
    with engine.connect() as conn, writing(conn):
        before = conn.execute(select(t.c.amount_minor).where(key).with_for_update()).scalar()
        conn.execute(delete(t).where(key))
        conn.execute(
            insert(t).values(
                client_id=client_id, business_date=day, amount_minor=amount_minor,
                recorded_at=now,
            )
        )  # fmt: skip
    return None if before is None else int(before)


def manual_minor(conn: Connection, client_id: str, day: dt.date) -> int | None:
    """What staff recorded for `client_id` and `day`, if anything."""
    found = conn.execute(_MANUAL, {"client_id": client_id, "day": day}).scalar()
    return None if found is None else int(found)


# -- what the gate reads of each file: its EUR per due date ----------------------------------

_d = db.file_days.c
# The columns of a payment's row that `large_days.add_file_days` reads, in its order.
DAY_COLUMNS = ("due_date", "currency", "status", "amount_minor", "large_day_held_on")
_PAYMENT_DAYS = select(_p.file_id, *(_p[n] for n in DAY_COLUMNS))
_FILE_PAYMENT_DAYS = _PAYMENT_DAYS.where(_p.file_id.in_(bindparam("file_ids", expanding=True)))
_DELETE_FILE_DAYS = delete(db.file_days).where(
    _d.file_id.in_(bindparam("file_ids", expanding=True))
)


def record_days(
    conn: Connection, file_id: int, client_id: str, days: Mapping[dt.date, list[int]]
) -> None:
    """Keep what a file's first run put into each day (`large_days.add_file_days` of its
    payments' rows as written)."""
    if days:
        conn.execute(insert(db.file_days), _rows(file_id, client_id, days))


def refresh_days(conn: Connection, client_id: str, file_ids: Collection[int]) -> None:
    """Work out again what these files of `client_id` put into each day, from their
    payments' rows, after a later run or a cancellation changed them (in the same
    transaction)."""
    ids = sorted(file_ids)
    if not ids:
        return
    found = _days_of(conn.execute(_FILE_PAYMENT_DAYS, {"file_ids": ids}))
    conn.execute(_DELETE_FILE_DAYS, {"file_ids": ids})
    rows = [r for i in ids for r in _rows(i, client_id, found.get(i, {}))]
    if rows:
        conn.execute(insert(db.file_days), rows)


def check_days(conn: Connection) -> None:
    """The invariant: `gw_file_days` holds exactly what the payments' rows put into each
    day, for every file."""
    kept = {
        (r.file_id, r.due_date, r.client_id, int(r.executed_minor), int(r.open_minor), r.held)
        for r in conn.execute(select(db.file_days))
    }
    clients = {r.id: r.client_id for r in conn.execute(select(_f.id, _f.client_id))}
    worked_out = {
        (file_id, day, clients[file_id], *totals)
        for file_id, days in _days_of(conn.execute(_PAYMENT_DAYS)).items()
        for day, totals in days.items()
    }
    assert kept == worked_out, (sorted(kept - worked_out), sorted(worked_out - kept))


def _days_of(rows: Iterable[Any]) -> dict[int, dict[dt.date, list[int]]]:
    """What each file's payments (rows of `_PAYMENT_DAYS`) put into each day."""
    by_file: dict[int, list[Any]] = {}
    for row in rows:
        by_file.setdefault(row[0], []).append(row[1:])
    found: dict[int, dict[dt.date, list[int]]] = {}
    for file_id, payments in by_file.items():
        large_days.add_file_days(found.setdefault(file_id, {}), payments)
    return found


def _rows(file_id: int, client_id: str, days: Mapping[dt.date, list[int]]) -> list[dict[str, Any]]:
    return [
        {"file_id": file_id, "due_date": day, "client_id": client_id,
         "executed_minor": executed, "open_minor": open_, "held": held}
        for day, (executed, open_, held) in sorted(days.items())
    ]  # fmt: skip


# -- batches waiting for signatures (SPEC §11) ------------------------------------------------


def add_awaiting(
    eur: Counter[dt.date],
    days: Iterable[dt.date | None],
    currencies: Iterable[str],
    amounts: Iterable[int | None],
) -> None:
    """Add a waiting batch's transactions (their requested dates, currencies and amounts)
    to `eur`: the EUR it instructs per business day (a date on a closed day executes on
    the next business day)."""
    for day, code, amount in zip(days, currencies, amounts, strict=True):
        if code == large_days.CURRENCY and amount is not None and day is not None:
            eur[calendar.business_day_on_or_after(day)] += amount


def record_awaiting(conn: Connection, awaiting_id: int, eur: Mapping[dt.date, int]) -> None:
    """Keep what a batch waiting for signatures instructs in EUR per business day."""
    if eur:
        conn.execute(
            insert(db.awaiting_eur),
            [{"awaiting_id": awaiting_id, "business_date": d, "amount_minor": a}
             for d, a in sorted(eur.items())],
        )  # fmt: skip


def gate(
    conn: Connection,
    client_id: str,
    day: dt.date,
    *,
    threshold_minor: int,
    announce_by: dt.time,
    timezone: ZoneInfo,
) -> large_days.Gate:
    """The client's business day `day` under the large-payment-day rule, as the database
    holds it: the EUR executed so far, whether a payment was already held, and what was
    announced (the payments known by the deadline, the batches waiting for signatures,
    and what staff recorded): ONE query, over what the client's files put into that day
    and the next (`gw_file_days`: a row per file and day, however many payments)."""
    deadline_at = large_days.deadline(day, announce_by, timezone).astimezone(dt.UTC)
    row = conn.execute(
        _GATE,
        {
            "client_id": client_id, "day": day, "following": calendar.next_business_day(day),
            "deadline_at": deadline_at,
        },
    ).one()  # fmt: skip
    executed, automatic = sums.exact_total(*row[0:2]), sums.exact_total(*row[2:4])
    tripped, awaiting = int(row[4]), sums.exact_total(*row[5:7])
    manual = None if row[7] is None else int(row[7])
    announced = large_days.announced_minor(automatic + awaiting, manual)
    state = large_days.DayState(day, threshold_minor, announced, executed, tripped > 0)
    return large_days.Gate(state, announce_by)


_today = _d.due_date == bindparam("day")
# Known by the deadline: its file arrived by then (a batch authorised later keeps the
# arrival of its upload). Held on `day`: due the business day after it.
_GATE = (
    select(
        *sums.split_total(case((_today, _d.executed_minor))),
        *sums.split_total(
            case((and_(_today, _f.received_at <= bindparam("deadline_at")), _d.open_minor))
        ),
        func.coalesce(func.sum(case((_d.due_date == bindparam("following"), _d.held))), 0),
        *_AWAITING,
        _MANUAL.scalar_subquery(),
    )
    .select_from(db.file_days.join(db.files, _f.id == _d.file_id))
    .where(
        _d.client_id == bindparam("client_id"),
        _d.due_date.in_([bindparam("day"), bindparam("following")]),
    )
)  # fmt: skip
