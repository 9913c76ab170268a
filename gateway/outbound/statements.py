"""camt.053 end-of-day statements: one per account and business day, in date order.

Entries come from the ledger's postings with what the payments they carry said
(`entries.py`).

Balances are the ledger's: the opening balance of a day is the sum of every
earlier posting, the closing balance the opening plus the day's entries, and
each statement is checked to open where the previous one closed.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy import Connection, func, select

from gateway import booking_days, counters, db
from gateway.environment import Environment
from gateway.outbound import camt053_v02, reports
from gateway.outbound.account_report import (
    AccountReport,
)
from gateway.outbound.entries import Entries, balance_before
from gateway.settings import ClientSettings
from ledger import calendar
from ledger.schema import accounts as t_accounts
from ledger.schema import postings as t_postings

log = structlog.get_logger("gateway.statements")
STATEMENT = camt053_v02.MESSAGE
catch_up_business_days_max = 10  # days a pass states; a longer absence takes more passes
TREASURY_NAME = "Valsts kase"


class Refusal(enum.Enum):
    """Why a statement must not be written for a day (SPEC §8: numbered in date order)."""

    BEFORE_FIRST_DAY = "before the account's first business day"
    OUT_OF_ORDER = "an unstated day before the latest stated one"
    UNSTATED_MOVEMENT = "an earlier day with movement, after the latest stated one, is unstated"
    UNSTATED_DAY = "an earlier business day is unstated (empty statements are on)"


# Refusals that keep the statements in order; `eod --date` writes nothing for the day then.
ORDER_REFUSALS = (Refusal.OUT_OF_ORDER, Refusal.UNSTATED_MOVEMENT, Refusal.UNSTATED_DAY)


@dataclass(frozen=True, slots=True)
class StatementResult:
    iban: str
    day: dt.date
    written: bool
    file_name: str | None
    why: str
    refusal: Refusal | None = None
    # With a refusal: the account's first business day, its latest stated day, or the
    # unstated day with movement.
    bound: dt.date | None = None


# -- camt.053 ------------------------------------------------------------------------------


def write_statements(env: Environment, day: dt.date) -> list[StatementResult]:
    """camt.053 for every client account for business day `day` (idempotent). An account
    whose statement for `day` would predate it or come after a later day's is left out,
    with its `Refusal`."""
    if not calendar.is_business_day(day):
        return [
            StatementResult(iban, day, False, None, f"{day} is not a business day")
            for _, iban in reports.client_accounts(env)
        ]
    results = []
    for client, iban in reports.client_accounts(env):
        try:
            with env.ledger.begin() as tx:
                results.append(_statement(env, tx.conn, client, iban, day))
        except _Refused as refused:  # rolled back, its number included
            results.append(refused.result)
    reports.deliver_now(env)
    for r in results:
        if r.written:
            log.info("statement.written", iban=r.iban, day=r.day.isoformat(), file=r.file_name)
    return results


def _statement(
    env: Environment, conn: Connection, client: ClientSettings, iban: str, day: dt.date
) -> StatementResult:
    s = db.statements.c
    booking_days.close(conn, day)  # the day's bookings in flight commit first
    account = conn.execute(select(t_accounts).where(t_accounts.c.iban == iban)).one()
    refused = statement_refusal(conn, iban, account.id, day, env.settings.eod_empty_statements)
    if refused is not None:
        return refused
    # The number first: its row lock makes the writers of one account's statements take
    # turns, so the check below sees a statement another process has just committed.
    sequence = counters.next_value(conn, f"statement:{iban}")
    refused = statement_refusal(conn, iban, account.id, day, env.settings.eod_empty_statements)
    if refused is not None:
        raise _Refused(refused)
    day_entries = Entries(conn, account.id, day=day)  # read as written, a page at a time
    summary = day_entries.totals()  # the entries are checked against it as they are written
    opening = balance_before(conn, account.id, day)
    closing = opening + summary.net_minor
    previous = conn.execute(
        select(s.closing_minor)
        .where(s.iban == iban, s.message == STATEMENT, s.business_date < day)
        .order_by(s.business_date.desc())
        .limit(1)
    ).first()
    # Pair assertion: a day opens where the previous statement closed.
    assert previous is None or previous[0] == opening, (iban, day, previous, opening)
    local = env.local_now()
    msg_id = reports.new_msg_id(conn, local)
    start, end = reports.day_bounds(env, day)
    report = AccountReport(
        msg_id=msg_id,
        report_id=statement_id(iban, day, sequence),
        created_at=local,
        electronic_seq_nb=sequence,
        legal_seq_nb=sequence,
        iban=iban,
        currency=account.currency,
        owner_name=client.name,
        servicer_bic=env.settings.bic,
        from_datetime=start,
        to_datetime=end,
        opening_minor=opening,
        closing_minor=closing,
        entries=day_entries,
        totals=summary,
    )
    outbox_id, name = reports.enqueue(conn, client.id, camt053_v02, report)
    conn.execute(
        db.statements.insert().values(
            iban=iban,
            business_date=day,
            message=STATEMENT,
            sequence_nb=sequence,
            opening_minor=opening,
            closing_minor=closing,
            outbox_id=outbox_id,
        )
    )
    return StatementResult(iban, day, True, name, f"{summary.count} entries")


class _Refused(Exception):
    """A statement found out of order once its number was taken: the transaction rolls
    back, number and all."""

    def __init__(self, result: StatementResult) -> None:
        super().__init__(result.why)
        self.result = result


def statement_id(iban: str, day: dt.date, sequence: int) -> str:
    """A camt.053's `Stmt/Id`: unique among all the treasury's statements (ISO 20022: it
    identifies the statement unambiguously), so it names the account — the day and the
    account's number alone repeat across accounts. A treasury IBAN (21 characters) leaves
    room in the 35 of `Max35Text`."""
    return f"{iban}-{day:%Y%m%d}-{sequence}"


def statement_refusal(
    conn: Connection, iban: str, account_id: int, day: dt.date, empty_statements: bool
) -> StatementResult | None:
    """Why no statement of `iban` may be written for business day `day`, or None.

    Statements are numbered in date order (SPEC §8): none for a day before the
    account's first business day, none for a day before its latest stated one (it
    would carry a higher number than that later day's), and a day is stated once.
    """
    s = db.statements.c
    stated = conn.execute(
        select(s.business_date).where(
            s.iban == iban, s.message == STATEMENT, s.business_date >= day
        )
    ).scalars().all()
    if day in stated:
        return StatementResult(iban, day, False, None, "already written")
    first = first_business_day(conn, iban, account_id)
    if first is None or day < first:
        why = f"before the account's first business day, {first}" if first else (
            "the account has never appeared in the ledger"
        )
        return StatementResult(iban, day, False, None, why, Refusal.BEFORE_FIRST_DAY, first)
    if stated:
        latest = max(stated)
        why = f"statements are written up to {latest}; {day} would be numbered after it"
        return StatementResult(iban, day, False, None, why, Refusal.OUT_OF_ORDER, latest)
    moved = _unstated_movement(conn, iban, account_id, day)
    if moved is not None:
        why = f"{moved} has movement and no statement; it is stated first"
        return StatementResult(iban, day, False, None, why, Refusal.UNSTATED_MOVEMENT, moved)
    # SPEC §8: one statement per account per business day, the empty ones included
    missing = next_unstated_day(conn, iban, account_id, True) if empty_statements else None
    if missing is not None and missing < day:
        why = f"{missing} has no statement; it is stated first"
        return StatementResult(iban, day, False, None, why, Refusal.UNSTATED_DAY, missing)
    if not empty_statements and not _moved(conn, account_id, day):
        return StatementResult(iban, day, False, None, "no movement (empty statements are off)")
    return None


def _unstated_movement(
    conn: Connection, iban: str, account_id: int, day: dt.date
) -> dt.date | None:
    """The first day before `day` with movement on the account after its latest statement
    (before `day`), or since it began when it has none, if any: stating `day` would open
    at a balance no statement closed with (SPEC §8: each day's opening equals the previous
    closing), and the earlier day's entries would be in no statement, ever."""
    latest = _latest_stated(conn, iban, before=day)
    return _first_movement(conn, account_id, latest, before=day)


def next_unstated_day(
    conn: Connection, iban: str, account_id: int, empty_statements: bool
) -> dt.date | None:
    """The first business day the account still needs a statement for: the one after its
    latest statement (or its first business day) — with empty statements off, the first
    day it moved after that — or None (nothing has moved since)."""
    latest = _latest_stated(conn, iban)
    if empty_statements:
        if latest is not None:
            return calendar.next_business_day(latest)
        return first_business_day(conn, iban, account_id)
    moved = _first_movement(conn, account_id, latest)
    return calendar.business_day_on_or_after(moved) if moved is not None else None


def _latest_stated(conn: Connection, iban: str, before: dt.date | None = None) -> dt.date | None:
    """The account's latest stated day (before `before`, if given)."""
    s = db.statements.c
    query = select(func.max(s.business_date)).where(s.iban == iban, s.message == STATEMENT)
    if before is not None:
        query = query.where(s.business_date < before)
    latest: dt.date | None = conn.execute(query).scalar()
    return latest


def _first_movement(
    conn: Connection, account_id: int, after: dt.date | None, before: dt.date | None = None
) -> dt.date | None:
    """The first booking day of the account after `after` (and before `before`)."""
    p = t_postings.c
    query = select(func.min(p.booking_date)).where(p.account_id == account_id)
    if after is not None:
        query = query.where(p.booking_date > after)
    if before is not None:
        query = query.where(p.booking_date < before)
    moved: dt.date | None = conn.execute(query).scalar()
    return moved


def first_business_day(conn: Connection, iban: str, account_id: int) -> dt.date | None:
    """The account's first business day: the first business day on or after the day it
    appeared in the ledger (noted by `open_environment` when it created the account,
    `counters.first_day`). An account created before such notes were kept has the day
    of its first posting or first statement instead, whichever is earlier; neither can
    predate the account, so the earliest of the three is taken."""
    s = db.statements.c
    known = [
        counters.first_day(conn, iban),
        conn.execute(
            select(func.min(t_postings.c.booking_date)).where(
                t_postings.c.account_id == account_id
            )
        ).scalar(),
        conn.execute(
            select(func.min(s.business_date)).where(s.iban == iban, s.message == STATEMENT)
        ).scalar(),
    ]
    days = [d for d in known if d is not None]
    return calendar.business_day_on_or_after(min(days)) if days else None


def refusal_line(day: dt.date, results: Sequence[StatementResult | None]) -> str | None:
    """Why `eod --date day` must write nothing, in one line, or None: some account has an
    earlier day with movement unstated or a later day stated already, or every account
    began after `day` — on a day that is no business day only the last (nothing would be
    written on it anyway)."""
    for refusal, said in ((Refusal.UNSTATED_MOVEMENT, "has movement and no statement"),
                          (Refusal.UNSTATED_DAY, "has no statement")):  # fmt: skip
        gaps, gap_days = _refused(results, refusal)
        if gaps and calendar.is_business_day(day):
            earliest = min(gap_days)
            on_it = [r for r in gaps if r.bound == earliest]  # the accounts of that day
            how_many = f"{len(on_it)} account(s), e.g. {on_it[0].iban}"
            return f"not stated: {earliest} {said} ({how_many}); state {earliest} first"
    late, late_days = _refused(results, Refusal.OUT_OF_ORDER)
    if late and calendar.is_business_day(day):
        how_many = f"{len(late)} account(s), e.g. {late[0].iban}"
        return f"not stated, and statements are written up to {max(late_days)} " \
            f"({how_many}); {day} would be numbered after a later day"  # fmt: skip
    early, firsts = _refused(results, Refusal.BEFORE_FIRST_DAY)
    if results and len(early) == len(results):
        since = f" ({min(firsts)})" if firsts else ""
        return f"before the accounts' first business day{since}: nothing to state"
    return None


def _refused(
    results: Sequence[StatementResult | None], refusal: Refusal
) -> tuple[list[StatementResult], list[dt.date]]:
    """The results refused for `refusal`, and the days they name (`bound`)."""
    refused = [r for r in results if r is not None and r.refusal is refusal]
    return refused, [r.bound for r in refused if r.bound is not None]


def eod_refusal(env: Environment, day: dt.date) -> str | None:
    """`refusal_line` for `day` as things stand, read only: checked before `eod --date`
    writes anything."""
    ibans = [iban for _, iban in reports.client_accounts(env)]
    with env.engine.connect() as conn:
        ids = _account_ids(conn, ibans)
        return refusal_line(
            day,
            [
                statement_refusal(conn, iban, ids[iban], day, env.settings.eod_empty_statements)
                for iban in ibans
            ],
        )


def _account_ids(conn: Connection, ibans: Sequence[str]) -> dict[str, int]:
    rows = conn.execute(
        select(t_accounts.c.iban, t_accounts.c.id).where(t_accounts.c.iban.in_(list(ibans)))
    ).all()
    return {iban: int(account_id) for iban, account_id in rows}


def _moved(conn: Connection, account_id: int, day: dt.date) -> bool:
    return (
        conn.execute(
            select(t_postings.c.id)
            .where(t_postings.c.account_id == account_id, t_postings.c.booking_date == day)
            .limit(1)
        ).first()
        is not None
    )


def pending_due_by(env: Environment, day: dt.date) -> int:
    """The payments due on or before `day` still pending: a day stated when no run has
    executed them (the daemon was down) leaves them to the day they run (`eod` says so)."""
    due = db.pending_only(), db.payments.c.due_date <= day
    with env.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(db.payments).where(*due)).scalar_one()


def day_closed(env: Environment, day: dt.date) -> bool:
    """Whether `day` is over for booking: statements may be written for it."""
    local = env.local_now()
    return day < local.date() or (day == local.date() and local.time() >= env.settings.eod_time)


def next_due_day(env: Environment) -> dt.date | None:
    """The oldest closed business day some client account still needs a statement of
    (`next_unstated_day`), if any: what `run_due_eod` states next."""
    ibans = [iban for _, iban in reports.client_accounts(env)]
    empty = env.settings.eod_empty_statements
    with env.engine.connect() as conn:
        ids = _account_ids(conn, ibans)
        due = [next_unstated_day(conn, iban, ids[iban], empty) for iban in ibans]
    days = [d for d in due if d is not None]
    return min(days) if days and day_closed(env, min(days)) else None


def run_due_eod(env: Environment, before: dt.date | None = None) -> int:
    """The daemon's end of day: statements for every closed business day some account still
    needs (`next_unstated_day`), oldest first, at most `catch_up_business_days_max` days
    in one call: a restart after a long absence catches up over the next passes, day by
    day, so that each day opens where the previous statement closed. `before`: only the
    days before it."""
    written = 0
    for _ in range(catch_up_business_days_max):
        day = next_due_day(env)
        if day is None or (before is not None and day >= before):
            break
        of_day = sum(r.written for r in write_statements(env, day))
        if not of_day:
            if next_due_day(env) != day:
                continue  # another process (a second daemon) stated it meanwhile
            log.warning("eod.nothing_written", day=day.isoformat())
            break
        log.info("eod.statements", day=day.isoformat(), written=of_day)
        written += of_day
    return written
