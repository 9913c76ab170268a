"""Large-payment-day announcements in the database: the ones staff record
(`ekase-gateway announce`, table `gw_announcements`) and the automatic ones (the
payments known by the deadline, read from `gw_payments`, and the batches that arrived
by then and still wait for signatures, `gw_awaiting_eur`). The rule is `large_days`.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, and_, bindparam, case, delete, func, insert, select

from gateway import db, large_days
from gateway.awaiting_shelf import WAITING
from ledger import calendar

t = db.announcements
_a, _e, _p, _f = db.awaiting.c, db.awaiting_eur.c, db.payments.c, db.files.c

# The statements every file's gate runs, built once per process (SQLAlchemy keeps their
# compiled form): what staff recorded, and the EUR of waiting batches, each also a column
# of the gate's one query.
_MANUAL = select(t.c.amount_minor).where(
    t.c.client_id == bindparam("client_id"), t.c.business_date == bindparam("day")
)
_AWAITING = (
    select(func.coalesce(func.sum(_e.amount_minor), 0))
    .select_from(db.awaiting_eur.join(db.awaiting, _a.id == _e.awaiting_id))
    .where(
        _a.client_id == bindparam("client_id"),
        _a.state == WAITING,
        _a.received_at <= bindparam("deadline_at"),
        _e.business_date == bindparam("day"),
    )
)


def record(
    engine: Engine, client_id: str, day: dt.date, amount_minor: int, now: dt.datetime
) -> int | None:
    """Record what `client_id` announced for `day` (EUR, minor units), replacing an
    earlier announcement; returns the amount it replaced, if any."""
    assert amount_minor >= 0
    key = and_(t.c.client_id == client_id, t.c.business_date == day)
    with engine.begin() as conn:
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


def known_payments(conn: Connection, client_id: str, day: dt.date) -> list[large_days.Known]:
    """The client's EUR payments due on `day` that are not rejected, with the time
    their file arrived: `large_days.known_by_deadline` keeps those known in time."""
    p, f = db.payments, db.files
    rows = conn.execute(
        select(p.c.currency, p.c.amount_minor, f.c.received_at)
        .join(f, f.c.id == p.c.file_id)
        .where(
            f.c.client_id == client_id,
            p.c.due_date == day,
            p.c.currency == large_days.CURRENCY,
            p.c.status != "RJCT",
        )
    )
    return [
        large_days.Known(r.currency, int(r.amount_minor), _as_utc(r.received_at)) for r in rows
    ]


def announced_minor(
    conn: Connection, client_id: str, day: dt.date, deadline_at: dt.datetime
) -> int:
    """Everything `client_id` announced for `day`: automatic and recorded."""
    automatic = large_days.known_by_deadline(known_payments(conn, client_id, day), deadline_at)
    automatic += awaiting_minor(conn, client_id, day, deadline_at)
    return large_days.announced_minor(automatic, manual_minor(conn, client_id, day))


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


def awaiting_minor(
    conn: Connection, client_id: str, day: dt.date, deadline_at: dt.datetime
) -> int:
    """EUR for `day` of the client's batches that arrived by `deadline_at` and still wait
    for signatures. Known to the treasury from their upload, they count as announced; once
    authorised, their payments' rows count instead (their file keeps its arrival time),
    and an expired batch never executes, so it no longer counts."""
    values = {"client_id": client_id, "day": day, "deadline_at": deadline_at}
    return int(conn.execute(_AWAITING, values).scalar() or 0)


def _as_utc(value: dt.datetime) -> dt.datetime:
    # SQLite returns naive datetimes; the gateway stores every timestamp in UTC.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def gate(
    conn: Connection,
    client_id: str,
    debtor_ibans: Sequence[str],
    day: dt.date,
    *,
    threshold_minor: int,
    announce_by: dt.time,
    timezone: ZoneInfo,
) -> large_days.Gate:
    """The client's business day `day` under the large-payment-day rule, as the database
    holds it: the EUR executed so far, whether a payment was already held, and what was
    announced (the payments known by the deadline, the batches waiting for signatures,
    and what staff recorded): ONE query, over the client's accounts' payments of that day
    and the next (by the index on debtor, status and due date)."""
    deadline_at = large_days.deadline(day, announce_by, timezone).astimezone(dt.UTC)
    row = conn.execute(
        _GATE,
        {
            "client_id": client_id, "debtors": list(debtor_ibans), "day": day,
            "following": calendar.next_business_day(day), "deadline_at": deadline_at,
        },
    ).one()  # fmt: skip
    executed, automatic, tripped, awaiting = (int(v) for v in row[:4])
    manual = None if row[4] is None else int(row[4])
    announced = large_days.announced_minor(automatic + awaiting, manual)
    state = large_days.DayState(day, threshold_minor, announced, executed, tripped > 0)
    return large_days.Gate(state, announce_by)


_today = _p.due_date == bindparam("day")
_GATE = (
    select(
        func.coalesce(func.sum(case((and_(_today, _p.status == "ACSC"), _p.amount_minor))), 0),
        func.coalesce(
            func.sum(case((and_(_today, _f.received_at <= bindparam("deadline_at")),
                           _p.amount_minor))), 0
        ),
        func.count(case((_p.large_day_held_on == bindparam("day"), 1))),
        _AWAITING.scalar_subquery(),
        _MANUAL.scalar_subquery(),
    )
    .select_from(db.payments.join(db.files, _f.id == _p.file_id))
    .where(
        _p.debtor_iban.in_(bindparam("debtors", expanding=True)),
        _p.status.in_(["ACSC", "PDNG"]),
        _p.due_date.in_([bindparam("day"), bindparam("following")]),
        _p.currency == large_days.CURRENCY,
        _f.client_id == bindparam("client_id"),
    )
)  # fmt: skip
