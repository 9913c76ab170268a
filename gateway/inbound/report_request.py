"""What an account reporting request (camt.060) asks for, as a value, whatever its version.

camt.060.001.03 and .05 (`camt060_v03`, `camt060_v05`) differ only in types that do
not matter here, so both are read into `ReportRequest` by `from_document`, which
judges what the request asks for on its own (the gateway then judges it against the
client's accounts and its books):

- each requested report is `camt.052` (the current day so far) or `camt.053` (copies
  of the statements issued), named as `camt.05x` or `camt.05x.001.02`, the versions we
  write; anything else is `CH17`;
- the account must be given by IBAN (`AC01`); the period must not end before it
  starts (`DT01`);
- its camt.053 reports together may cover at most `statement_days_max` business days
  (`NARR`; a day asked for several accounts counts once); an open end counts up to
  `today`; and a request may name at most `reports_per_request_max` reports.

A request refused as a whole is a `RequestFinding`, answered with admi.002.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lxml import etree

from gateway.inbound import iso_model, safe_xml
from gateway.pull_codes import RequestFinding, RequestReason
from ledger import calendar

statement_days_max = 31  # SPEC §15: business days of statements one request may ask for
reports_per_request_max = 20  # RptgReq elements in one request
# 31 business days never span more than this many calendar days (six weeks and
# the longest Latvian run of holidays fit well within it): a longer period is over
# the limit without asking the calendar, whatever years it names.
_statement_calendar_days_max = 3 * statement_days_max


class ReportKind(StrEnum):
    INTRADAY = "camt.052"  # the current day so far
    STATEMENT = "camt.053"  # copies of the end-of-day statements issued


_OFFERED = {
    "camt.052": ReportKind.INTRADAY,
    "camt.052.001.02": ReportKind.INTRADAY,
    "camt.053": ReportKind.STATEMENT,
    "camt.053.001.02": ReportKind.STATEMENT,
}


@dataclass(frozen=True, slots=True)
class Period:
    """RptgPrd as sent: dates, and the times of day when given (with their offset if any)."""

    from_date: dt.date
    to_date: dt.date | None = None  # None: open-ended (up to now)
    from_time: dt.time | None = None
    to_time: dt.time | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestedReport:
    """One RptgReq: which report of which account, for when."""

    kind: ReportKind
    requested_message: str  # ReqdMsgNmId as sent, e.g. "camt.053.001.02"
    iban: str
    period: Period | None  # None: not given (camt.052: today; camt.053: the gateway's choice)
    request_id: str | None = None  # RptgReq/Id
    # camt.053 with a period: the business days it covers (to `today` if open-ended)
    business_days: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportRequest:
    message: str  # camt.060.001.03 or camt.060.001.05
    msg_id: str
    created_at: dt.datetime
    reports: tuple[RequestedReport, ...]


def read(
    data: bytes,
    message: str,
    document: type,
    *,
    today: dt.date,
    is_business_day: Callable[[dt.date], bool] = calendar.is_business_day,
) -> ReportRequest | RequestFinding:
    """Parse `data` safely, check it against the pyiso20022 model `document` of
    `message`, and judge what it asks for."""
    root = safe_xml.parse(data, message)
    if isinstance(root, str):
        return RequestFinding(RequestReason.FF01, root)
    bound = iso_model.bind(root, document)
    if isinstance(bound, str):
        return RequestFinding(
            RequestReason.FF01, f"not valid against {message}: {bound}", msg_id_of(root)
        )
    return from_document(bound, message, today=today, is_business_day=is_business_day)


def msg_id_of(root: etree._Element) -> str | None:
    """GrpHdr/MsgId of a request that is otherwise invalid, when it can be read."""
    found = root.find("*/{*}GrpHdr/{*}MsgId")
    text = found.text if found is not None else None
    return text if text and 0 < len(text) <= 35 and text.isprintable() else None


def from_document(
    document: Any,
    message: str,
    *,
    today: dt.date,
    is_business_day: Callable[[dt.date], bool] = calendar.is_business_day,
) -> ReportRequest | RequestFinding:
    """The request in a bound camt.060 `Document` (either version), or why it is refused."""
    body = document.acct_rptg_req
    msg_id: str = body.grp_hdr.msg_id
    if len(body.rptg_req) > reports_per_request_max:
        return RequestFinding(
            RequestReason.NARR,
            f"{len(body.rptg_req)} reports requested: at most {reports_per_request_max}"
            " in one request",
            msg_id,
        )
    reports = []
    for number, item in enumerate(body.rptg_req, start=1):
        report = _report(item, number, today, is_business_day)
        if isinstance(report, tuple):
            reason, info = report
            return RequestFinding(reason, info, msg_id)
        reports.append(report)
    over = _over_statement_limit(reports, today, is_business_day)
    if over is not None:
        return RequestFinding(RequestReason.NARR, over, msg_id)
    return ReportRequest(
        message=message,
        msg_id=msg_id,
        created_at=iso_model.date_time(body.grp_hdr.cre_dt_tm),
        reports=tuple(reports),
    )


def _report(
    item: Any, number: int, today: dt.date, is_business_day: Callable[[dt.date], bool]
) -> RequestedReport | tuple[RequestReason, str]:
    wanted: str = item.reqd_msg_nm_id
    kind = _OFFERED.get(wanted)
    if kind is None:
        return (
            RequestReason.CH17,
            f"report {number}: {wanted!r} is not offered; ask for camt.052.001.02 or"
            " camt.053.001.02",
        )
    iban = item.acct.id.iban if item.acct is not None else None
    if iban is None:
        return RequestReason.AC01, f"report {number}: the account must be given by IBAN"
    period = _period(item.rptg_prd)
    days = None
    if period is not None:
        end = period.to_date or today
        if end < period.from_date:
            return (
                RequestReason.DT01,
                f"report {number}: the period ends ({end}) before it starts ({period.from_date})",
            )
        if kind is ReportKind.STATEMENT:
            days = _business_days(period.from_date, end, is_business_day)
    return RequestedReport(
        kind=kind,
        requested_message=wanted,
        iban=iban,
        period=period,
        request_id=item.id,
        business_days=days,
    )


def _period(period: Any) -> Period | None:
    if period is None:
        return None
    dates, times = period.fr_to_dt, period.fr_to_tm
    return Period(
        from_date=dates.fr_dt.to_date(),
        to_date=dates.to_dt.to_date() if dates.to_dt is not None else None,
        from_time=iso_model.time_of_day(times.fr_tm) if times is not None else None,
        to_time=(
            iso_model.time_of_day(times.to_tm)
            if times is not None and times.to_tm is not None
            else None
        ),
    )


def _over_statement_limit(
    reports: list[RequestedReport], today: dt.date, is_business_day: Callable[[dt.date], bool]
) -> str | None:
    """Why the request asks for more than `statement_days_max` business days of statements
    (SPEC §15: in one request) — a report alone, or its camt.053 reports together, a day
    asked for several accounts counted once — or None."""
    days: set[dt.date] = set()
    numbers = []
    for number, report in enumerate(reports, start=1):
        period = report.period
        if report.kind is not ReportKind.STATEMENT or period is None:
            continue  # (no period: the latest statement, one day)
        first, last = period.from_date, period.to_date or today
        if (report.business_days or 0) > statement_days_max:
            return (
                f"report {number}: {first} to {last} is more than {statement_days_max}"
                f" business days of statements; ask for at most {statement_days_max} in one"
                " request"
            )
        span_days = (first + dt.timedelta(days=n) for n in range((last - first).days + 1))
        days.update(day for day in span_days if is_business_day(day))
        numbers.append(str(number))
    if len(days) <= statement_days_max:
        return None
    return (
        f"reports {', '.join(numbers[:-1])} and {numbers[-1]} together are more than"
        f" {statement_days_max} business days of statements; ask for at most"
        f" {statement_days_max} in one request"
    )


def _business_days(
    first: dt.date, last: dt.date, is_business_day: Callable[[dt.date], bool]
) -> int:
    """Business days from `first` to `last` inclusive; past the limit, just more than it."""
    span = (last - first).days + 1
    if span > _statement_calendar_days_max:
        return span  # over the limit whatever the calendar says (see above)
    return sum(1 for n in range(span) if is_business_day(first + dt.timedelta(days=n)))
