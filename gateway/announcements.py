"""Large-payment-day announcements in the database: the ones staff record
(`ekase-gateway announce`, table `gw_announcements`) and the automatic ones (the
payments known by the deadline, read from `gw_payments`). The rule is `large_days`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, Engine, and_, delete, insert, select

from gateway import db, large_days

t = db.announcements


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
    found = conn.execute(
        select(t.c.amount_minor).where(t.c.client_id == client_id, t.c.business_date == day)
    ).scalar()
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
    return [large_days.Known(r.currency, int(r.amount_minor), _as_utc(r.received_at)) for r in rows]


def announced_minor(
    conn: Connection, client_id: str, day: dt.date, deadline_at: dt.datetime
) -> int:
    """Everything `client_id` announced for `day`: automatic and recorded."""
    automatic = large_days.known_by_deadline(known_payments(conn, client_id, day), deadline_at)
    return large_days.announced_minor(automatic, manual_minor(conn, client_id, day))


def _as_utc(value: dt.datetime) -> dt.datetime:
    # SQLite returns naive datetimes; the gateway stores every timestamp in UTC.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
