"""The revenue and expenditure summary ("kopsavilkums", SPEC §12): CSV, sealed.

For a client and a period, per budget account: the opening balance, revenue by code
(the IKK lines of its credits), expenditure by code (the EKK lines of its debits),
what moved without codes, the closing balance, and a check line. Every amount comes
from the ledger's postings on the account (`entries.entries`, the statements' own
reading) and each posting's payments: a payment's code lines are spread over what was
booked for it (`allocate`: a converted payment's lines at its rate, rounded so they add
up exactly), and whatever a posting booked beyond its coded payments is `uncoded`. The
check line is closing − (opening + every movement line): always 0.00, asserted before
the file is written (a summary that does not reconcile is a fault, never a file).

Columns `account;currency;line;code;name;amount`; amounts signed as they move the
balance (expenditure and uncoded debits negative), decimal point `.`; UTF-8, `;`,
written by the `csv` module. The file goes through the outbox like every answer:
`<stamp>_budget-summary_<client>_<from>_<to>.csv`, sealed on delivery.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import structlog
from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from gateway import db
from gateway.environment import Environment
from gateway.errors import UsageError
from gateway.inbound import budget
from gateway.inbound.classifier import Classifier
from gateway.outbound import answers, deflate, outbox, reports, statements
from gateway.outbound.account_report import Entry, check_entry
from gateway.outbound.entries import balance_before, entries
from gateway.settings import ClientSettings
from ledger import calendar, currency
from ledger.engine import snapshot
from ledger.schema import accounts as t_accounts

log = structlog.get_logger("gateway.budget_summary")
MESSAGE = "budget-summary"
COLUMNS = ("account", "currency", "line", "code", "name", "amount")
CLOSING_NAME = "closing balance"
# The period's last day is not closed yet (today, or later): what the balance is so far.
SO_FAR_NAME = "balance so far (the period is not over)"
period_days_max = 400  # a year and a bit: one summary never reads more than this


@dataclass(frozen=True, slots=True)
class Line:
    account: str
    currency: str
    line: str  # opening | revenue | expenditure | uncoded | closing | check
    code: str
    name: str
    amount_minor: int  # signed: as it moves the balance


def allocate(weights: Sequence[Decimal], total: int) -> list[int] | None:
    """`total` spread over `weights` in proportion, each rounded down and the cents left
    over given to the largest remainders (ties: the earlier line), so the parts add up
    to `total` exactly. None when the weights cannot carry it (none positive)."""
    whole = sum(weights, Decimal(0))
    if whole <= 0 or any(w < 0 for w in weights):
        return None
    exact = [w * total / whole for w in weights]
    parts = [int(x) for x in exact]  # total >= 0: int() rounds down
    left = total - sum(parts)
    order = sorted(range(len(parts)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:left]:
        parts[i] += 1
    return parts


def _coded(entry: Entry) -> tuple[Counter[str], int]:
    """What `entry` booked under each code of its side, and what it booked uncoded."""
    side = budget.REVENUE_SIDE if entry.credit else budget.EXPENSE_SIDE
    by_code: Counter[str] = Counter()
    uncoded = entry.amount_minor
    for detail in entry.details:
        lines = [x for x in budget.read(detail.budget_codes) if x.side == side]
        try:
            weights = [Decimal(x.amount) for x in lines]
        except InvalidOperation:
            continue
        parts = allocate(weights, detail.amount_minor) if lines else None
        if parts is None:
            continue
        for x, part in zip(lines, parts, strict=True):
            by_code[x.code] += part
        uncoded -= detail.amount_minor
    return by_code, uncoded


def account_lines(
    iban: str, ccy: str, opening: int, booked: Iterable[Entry], closing: int,
    names: Classifier | None, day: dt.date, *, over: bool = True,
) -> list[Line]:  # fmt: skip
    """The summary of one account (pure): see the module docstring. `over`: whether the
    period's last day is closed; a summary of a period still running says that its
    closing balance is the balance so far."""
    revenue: Counter[str] = Counter()
    expenditure: Counter[str] = Counter()
    uncoded_credits = uncoded_debits = 0
    for entry in booked:
        by_code, uncoded = _coded(check_entry(entry, ccy))  # adds up as the statements do
        if entry.credit:
            revenue.update(by_code)
            uncoded_credits += uncoded
        else:
            expenditure.update(by_code)
            uncoded_debits += uncoded

    def name(code: str) -> str:
        return names.name(code, day) if names is not None else ""

    lines = [Line(iban, ccy, "opening", "", "opening balance", opening)]
    lines += [Line(iban, ccy, "revenue", c, name(c), revenue[c]) for c in sorted(revenue)]
    lines += [
        Line(iban, ccy, "expenditure", c, name(c), -expenditure[c]) for c in sorted(expenditure)
    ]
    lines += [
        Line(iban, ccy, "uncoded", "", "credits without codes", uncoded_credits),
        Line(iban, ccy, "uncoded", "", "debits without codes", -uncoded_debits),
        Line(iban, ccy, "closing", "", CLOSING_NAME if over else SO_FAR_NAME, closing),
    ]
    difference = closing - sum(x.amount_minor for x in lines[:-1])
    # Pair assertion: the movements by code and the ledger's balances agree to the cent.
    assert difference == 0, (iban, opening, closing, difference)
    lines.append(Line(iban, ccy, "check", "", "reconciles to the ledger", difference))
    return lines


def render(lines: Iterable[Line]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for x in lines:
        amount = currency.format_minor(x.amount_minor, x.currency)
        writer.writerow((x.account, x.currency, x.line, x.code, x.name, amount))
    return out.getvalue().encode("utf-8")


def is_final(body: bytes) -> bool:
    """Whether a summary (its CSV) was written once its period was over: its closing lines
    say "closing balance", not the balance so far."""
    rows = csv.DictReader(io.StringIO(body.decode("utf-8")), delimiter=";")
    closing = [row["name"] for row in rows if row["line"] == "closing"]
    return bool(closing) and all(name == CLOSING_NAME for name in closing)


def file_name(local: dt.datetime, client_id: str, start: dt.date, end: dt.date) -> str:
    return f"{local:%Y%m%dT%H%M%S}_{MESSAGE}_{client_id}_{start}_{end}.csv"


# -- the shell -------------------------------------------------------------------------------


def _client(env: Environment, client_id: str) -> ClientSettings:
    for client in env.settings.clients:
        if client.id == client_id:
            return client
    raise UsageError(f"--client {client_id}: no such client")


def summary_lines(
    conn: Connection, env: Environment, client: ClientSettings, start: dt.date, end: dt.date
) -> list[Line]:
    lines: list[Line] = []
    over = statements.day_closed(env, end)
    days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
    for account in (a for a in client.accounts if a.budget):
        row = conn.execute(select(t_accounts).where(t_accounts.c.iban == account.iban)).one()
        booked = [e for day in days for e in entries(conn, row.id, day=day)]
        opening = balance_before(conn, row.id, start)
        closing = balance_before(conn, row.id, end + dt.timedelta(days=1))
        lines += account_lines(
            account.iban, row.currency, opening, booked, closing, env.settings.classifier, end,
            over=over,
        )
    return lines


def write_summary(env: Environment, client_id: str, start: dt.date, end: dt.date) -> str:
    """The client's summary for `start`..`end` into its `out/`, sealed; its file name."""
    client = _client(env, client_id)
    if end < start:
        raise UsageError(f"--from {start} is after --to {end}")
    if (end - start).days >= period_days_max:
        raise UsageError(f"--from {start} --to {end}: at most {period_days_max} days")
    if not any(a.budget for a in client.accounts):
        raise UsageError(f"--client {client_id}: no budget account (budget = true)")
    asked = env.local_now()
    if start > asked.date():  # its opening balance would be today's, not the period's
        raise UsageError(f"--from {start} is after today, {asked.date()}: nothing to sum yet")
    for attempt in range(1, name_attempts_max + 1):
        try:
            name = _issue(env, client, start, end, asked)
            break
        except IntegrityError:  # its name taken meanwhile by another process's (PostgreSQL)
            if attempt == name_attempts_max:
                raise
    reports.deliver_now(env)
    log.info("budget_summary.written", client=client_id, start=str(start), end=str(end), file=name)
    return name


# Tries at a file name: the same summary asked for again within its second takes the next
# free second (`outbox.free_second`); one written meanwhile by another process is seen on
# the next try.
name_attempts_max = 3


def _issue(
    env: Environment, client: ClientSettings, start: dt.date, end: dt.date, asked: dt.datetime
) -> str:
    """The summary into the outbox under the first free name from `asked` on; its name."""
    # The period read as of one moment (`snapshot`): a running period goes on being booked
    # by other workers, and its lines must add up to the balances read with them.
    with snapshot(env.engine) as period:
        body = render(summary_lines(period, env, client, start, end))
    with env.ledger.begin() as tx:

        local = outbox.free_second(
            tx.conn, client.id, lambda at: file_name(at, client.id, start, end), asked
        )
        name = file_name(local, client.id, start, end)
        tx.conn.execute(
            insert(db.outbox).values(
                client_id=client.id, message=MESSAGE, msg_id=answers.new_msg_id(tx.conn, local),
                file_name=name, created_at=local, body=deflate.compressed(body),
            )
        )  # fmt: skip
    return name


def previous_month(day: dt.date) -> tuple[dt.date, dt.date]:
    end = day.replace(day=1) - dt.timedelta(days=1)
    return end.replace(day=1), end


# A daemon back after an absence writes the final summaries of this many months back
# that it missed (oldest first); a longer absence is `ekase-gateway summary`'s to fill.
catch_up_months_max = 12


def run_due(env: Environment) -> int:
    """The daemon's monthly run, on business days (SPEC §12: the first business day of the
    month, or the first the daemon sees after it): the final summary of every month of the
    last `catch_up_months_max` that has none yet, for every client with a budget account,
    from the month its accounts began. A summary of the month asked for while it ran
    (`ekase-gateway summary`, its closing line the balance so far) is not the month's: the
    final one is still written."""
    today = env.local_now().date()
    if not calendar.is_business_day(today):  # a business day is on or after its month's first
        return 0
    months = [previous_month(today)]
    while len(months) < catch_up_months_max:
        months.append(previous_month(months[-1][0]))
    written = 0
    for client in env.settings.clients:
        if not any(a.budget for a in client.accounts):
            continue
        with env.engine.connect() as conn:
            began = _began(conn, client)
            due = months[:1] if began is None else [m for m in reversed(months) if m[1] >= began]
            missing = [(s, e) for s, e in due if not _final_written(conn, client.id, s, e)]
        for start, end in missing:
            write_summary(env, client.id, start, end)
            written += 1
    return written


def _final_written(conn: Connection, client_id: str, start: dt.date, end: dt.date) -> bool:
    suffix = f"_{MESSAGE}_{client_id}_{start}_{end}.csv"
    earlier = conn.execute(
        select(db.outbox.c.body).where(
            db.outbox.c.client_id == client_id,
            db.outbox.c.message == MESSAGE,
            db.outbox.c.file_name.endswith(suffix),
        )
    ).scalars()
    return any(is_final(zlib.decompress(body)) for body in earlier)


def _began(conn: Connection, client: ClientSettings) -> dt.date | None:
    """The first business day of the earliest of `client`'s budget accounts: a month over
    before the accounts existed (a new installation, a new client) has nothing to sum.
    None where that is not known of every account (an account not in the ledger yet)."""
    ibans = [a.iban for a in client.accounts if a.budget]
    rows = conn.execute(
        select(t_accounts.c.iban, t_accounts.c.id).where(t_accounts.c.iban.in_(ibans))
    ).all()
    firsts = [statements.first_business_day(conn, iban, account_id) for iban, account_id in rows]
    known = [first for first in firsts if first is not None]
    return min(known) if len(rows) == len(ibans) and len(known) == len(firsts) else None
