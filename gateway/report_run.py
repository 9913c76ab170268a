"""Answering an account reporting request (camt.060, SPEC §15) inside its file's savepoint.

What the request asks for was judged on its own by `inbound.report_request`; here it is
judged against the client's accounts and the books, and answered:

- `camt.052`: the current day so far (opening balance, today's entries, interim balance),
  a new message of ours;
- `camt.053`: for each business day of the period, a copy of the statement issued then
  (`camt053_copy`: the same MsgId and content, `CpyDplctInd` `DUPL`), under a new file
  name (the time of the copy) and, at delivery, its own seal. An open-ended period ends
  at the last closed day; no period at all means the latest statement issued.

Every report is checked first, so a request is answered either with all its data or,
when one report cannot be given, with an admi.002 (`RequestFinding`) and no data: an
account that is not the client's (unknown and foreign look the same), a day not yet
closed, a period in which no statement was issued.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy import Connection, func, select

from gateway import db, record
from gateway.environment import Environment
from gateway.inbound import camt060_v03, camt060_v05
from gateway.inbound.report_request import ReportKind, ReportRequest, RequestedReport
from gateway.outbound import admi002_v01, camt053_copy, outbox, reports, statements
from gateway.pull_codes import RequestFinding, RequestReason
from ledger import calendar

REPORT_REQUESTS = (camt060_v03.MESSAGE, camt060_v05.MESSAGE)


@dataclass(frozen=True, slots=True)
class _Intraday:
    iban: str


@dataclass(frozen=True, slots=True)
class _Copies:
    iban: str
    outbox_ids: tuple[int, ...]


_Plan = _Intraday | _Copies


def answer(
    env: Environment, conn: Connection, client_id: str, request: ReportRequest, local: dt.datetime
) -> list[tuple[int, str]] | RequestFinding:
    """Issue the reports `request` asks for into the client's outbox (their outbox ids
    and file names), or the finding that refuses the whole request (nothing issued)."""
    plans: list[_Plan] = []
    for number, wanted in enumerate(request.reports, start=1):
        plan = _plan(env, conn, client_id, wanted, number, local)
        if isinstance(plan, RequestFinding):
            return RequestFinding(plan.reason, plan.info, request.msg_id)
        plans.append(plan)
    # Each report once, in the order asked, however often the request names it: repeated
    # or overlapping requests would multiply what goes into out/.
    once: dict[str | int, None] = {}  # an account's day so far (IBAN), a statement (outbox id)
    for plan in plans:
        once.update(dict.fromkeys([plan.iban] if isinstance(plan, _Intraday) else plan.outbox_ids))
    beyond = beyond_day_limit(env, conn, client_id, len(once), local)
    if beyond is not None:
        return RequestFinding(beyond.reason, beyond.info, request.msg_id)
    return [
        _intraday(env, conn, client_id, report, local)
        if isinstance(report, str)
        else _copy(conn, client_id, report, local)
        for report in once
    ]


def beyond_day_limit(
    env: Environment, conn: Connection, client_id: str, count: int, local: dt.datetime
) -> RequestFinding | None:
    """Whether `count` more reports would pass what the client's report requests may bring
    into its out/ today (`reports_per_day`: those issued and delivered again since the
    local midnight of `local`); the finding that refuses the request if so."""
    limit, key = env.settings.reports_per_day_of(client_id)
    o, f = db.outbox.c, db.files.c
    since = dt.datetime.combine(local.date(), dt.time(), local.tzinfo)
    # A name begins with its local creation time (`outbox.file_name`): the client's names
    # from today's on are a range of the index (client_id, file_name), not its years.
    issued = conn.execute(
        select(func.count()).select_from(db.outbox.join(db.files, o.file_id == f.id)).where(
            o.client_id == client_id, o.file_name >= f"{since:%Y%m%d}",
            o.created_at >= since,
            f.message.in_(REPORT_REQUESTS), o.message != admi002_v01.MESSAGE,
        )
    ).scalar_one()  # fmt: skip
    if issued + count <= limit:
        return None
    return _refused(
        RequestReason.NARR,
        f"{count} report(s) asked for, {issued} of the {limit} a day ({key}) issued today;"
        " send a new request (a new MsgId) tomorrow",
    )


def _refused(reason: RequestReason, info: str) -> RequestFinding:
    return RequestFinding(reason, info)


def _plan(
    env: Environment,
    conn: Connection,
    client_id: str,
    wanted: RequestedReport,
    number: int,
    local: dt.datetime,
) -> _Plan | RequestFinding:
    if not record.client_owns(env.settings, conn, client_id, wanted.iban):
        return _refused(
            RequestReason.AC02, f"report {number}: account {wanted.iban} is not one of yours"
        )
    today = local.date()
    period = wanted.period
    if wanted.kind is ReportKind.INTRADAY:
        if period is not None and (
            period.from_date != today or period.to_date not in (None, today)
        ):
            return _refused(
                RequestReason.DT01,
                f"report {number}: camt.052 reports the current day ({today}) only;"
                " ask for camt.053 for past days",
            )
        return _Intraday(wanted.iban)
    return _statements(env, conn, wanted, number, local)


def _statements(
    env: Environment, conn: Connection, wanted: RequestedReport, number: int, local: dt.datetime
) -> _Copies | RequestFinding:
    s = db.statements.c
    issued = select(s.business_date, s.outbox_id).where(
        s.iban == wanted.iban,
        s.message == statements.STATEMENT,
        s.outbox_id.is_not(None),
    )
    period = wanted.period
    if period is None:  # the latest statement issued
        row = conn.execute(issued.order_by(s.business_date.desc()).limit(1)).first()
        if row is None:
            return _refused(
                RequestReason.DT01, f"report {number}: no statement was issued for {wanted.iban}"
            )
        return _Copies(wanted.iban, (int(row.outbox_id),))
    first = period.from_date
    last = period.to_date or _last_closed(env, local)
    if not calendar.is_business_day(last):  # a weekend or holiday is never stated
        last = calendar.previous_business_day(last)
    if last < first:  # (its refusal named the period ending before it began)
        return _refused(
            RequestReason.DT01,
            f"report {number}: {first} to {period.to_date} holds no business day: a statement"
            " is written for each business day only",
        )
    if period.to_date is not None and not statements.day_closed(env, last):
        return _refused(
            RequestReason.DT01,
            f"report {number}: {last} is not closed yet; its statement is written at the end"
            " of the day (ask for camt.052 for the current day)",
        )
    rows = conn.execute(
        issued.where(s.business_date >= first, s.business_date <= last).order_by(s.business_date)
    ).all()
    if not rows:
        return _refused(
            RequestReason.DT01,
            f"report {number}: no statement was issued for {wanted.iban} from {first} to {last}",
        )
    return _Copies(wanted.iban, tuple(int(r.outbox_id) for r in rows))


def _last_closed(env: Environment, local: dt.datetime) -> dt.date:
    day = local.date()
    while not (calendar.is_business_day(day) and statements.day_closed(env, day)):
        day -= dt.timedelta(days=1)
    return day


def _intraday(
    env: Environment, conn: Connection, client_id: str, iban: str, local: dt.datetime
) -> tuple[int, str]:
    """camt.052 for `iban` now: opening balance, today's entries, interim balance."""
    client = next(c for c in env.settings.clients if c.id == client_id)
    return reports.enqueue_intraday(env, conn, client_id, client.name, iban, local)


def _copy(conn: Connection, client_id: str, outbox_id: int, local: dt.datetime) -> tuple[int, str]:
    """A copy of the statement in outbox row `outbox_id`: the same MsgId and content,
    marked DUPL, under a name of its own (the first second from `local` still free)."""
    original = conn.execute(select(db.outbox).where(db.outbox.c.id == outbox_id)).one()
    assert original.client_id == client_id, "a statement of another client's account"
    copy = camt053_copy.copy_of(zlib.decompress(original.body))

    def write(out: BinaryIO) -> None:
        out.write(copy)

    body = outbox.render(write)
    stamp = outbox.free_second(
        conn, client_id, lambda at: outbox.file_name(at, original.message, original.msg_id),
        local,
    )  # fmt: skip
    return outbox.enqueue(
        conn,
        client_id=client_id,
        message=original.message,
        msg_id=original.msg_id,
        created_local=stamp,
        body=body,
    )
