"""Account reports from the ledger: camt.053 statements, camt.054 notifications, camt.052.

Entries come from the ledger's postings; what a client needs to reconcile each
entry (its MsgId, PmtInfId, EndToEndId, counterparty, remittance) comes from the
gateway's payment rows, joined by the transfer reference. A batch-booked payment
information is one entry with one transaction detail per payment.

Balances are the ledger's: the opening balance of a day is the sum of every
earlier posting, the closing balance the opening plus the day's entries, and
each statement is checked to open where the previous one closed.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

import structlog
from sqlalchemy import Connection, and_, func, select

from gateway import counters, db
from gateway.environment import Environment
from gateway.errors import UsageError
from gateway.inbound.rules import iban_spec
from gateway.outbound import answers, camt052_v02, camt053_v02, camt054_v02, outbox
from gateway.outbound.account_report import (
    FUNDING,
    RECEIVED_INTERNAL,
    SENT_CROSS_BORDER,
    SENT_INTERNAL,
    SENT_MIXED,
    SENT_SEPA,
    AccountReport,
    BankTxCode,
    Entry,
    EntryDetail,
)
from gateway.references import reference_file_id
from gateway.settings import ClientSettings
from ledger import calendar
from ledger.core import AccountKind
from ledger.schema import accounts as t_accounts
from ledger.schema import postings as t_postings
from ledger.schema import transfers as t_transfers

log = structlog.get_logger("gateway.statements")
STATEMENT = camt053_v02.MESSAGE
catch_up_business_days_max = 10  # statements a restarted daemon writes for missed days
TREASURY_NAME = "Valsts kase"


class Refusal(enum.Enum):
    """Why a statement must not be written for a day (SPEC §8: numbered in date order)."""

    BEFORE_FIRST_DAY = "before the account's first business day"
    OUT_OF_ORDER = "an unstated day before the latest stated one"


@dataclass(frozen=True, slots=True)
class StatementResult:
    iban: str
    day: dt.date
    written: bool
    file_name: str | None
    why: str
    refusal: Refusal | None = None
    # With a refusal: the account's first business day, or its latest stated day.
    bound: dt.date | None = None


# -- entries -------------------------------------------------------------------------------


def _sepa(iban: str | None) -> bool:
    spec = iban_spec(iban[:2]) if iban else None
    return bool(spec is not None and spec.in_sepa_zone)


def _sent_code(row: Any) -> BankTxCode:
    if row.kind == "internal":
        return SENT_INTERNAL
    return SENT_SEPA if row.currency == "EUR" and _sepa(row.creditor_iban) else SENT_CROSS_BORDER


def _detail(row: Any, credit: bool) -> EntryDetail:
    return EntryDetail(
        amount_minor=row.amount_minor,
        msg_id=row.msg_id,
        pmt_inf_id=row.pmt_inf_id,
        end_to_end_id=row.end_to_end_id,
        instr_id=row.instr_id,
        acct_svcr_ref=row.acct_svcr_ref,
        counterparty_name=row.debtor_name if credit else row.creditor_name,
        counterparty_iban=row.debtor_iban if credit else row.creditor_iban,
        counterparty_bic=None if credit else row.creditor_bic,
        remittance=row.remittance,
        remittance_structured=row.remittance_structured,
        bank_tx_code=RECEIVED_INTERNAL if credit else _sent_code(row),
    )


def _payments_by_transfer(conn: Connection, references: Sequence[str]) -> dict[str, list[Any]]:
    """The booked payments each transfer carries, found file by file: a payment's
    transfer reference names its file (`references.reference_file_id`)."""
    by_file: dict[int, list[str]] = defaultdict(list)
    for reference in references:
        file_id = reference_file_id(reference)
        if file_id is not None:
            by_file[file_id].append(reference)
    found: dict[str, list[Any]] = defaultdict(list)
    p = db.payments.c
    for file_id, refs in sorted(by_file.items()):
        for start in range(0, len(refs), 500):
            rows = conn.execute(
                select(db.payments)
                .where(
                    p.file_id == file_id,
                    p.transfer_ref.in_(refs[start : start + 500]),
                    p.status == "ACSC",
                )
                .order_by(p.seq)
            )
            for row in rows:
                found[row.transfer_ref].append(row)
    return found


def _funding_counterparty(conn: Connection, transfer_ids: Sequence[int]) -> dict[int, str]:
    """The funding account each funding transfer came from."""
    p = t_postings.c
    found: dict[int, str] = {}
    for start in range(0, len(transfer_ids), 500):
        rows = conn.execute(
            select(p.transfer_id, t_accounts.c.iban)
            .select_from(t_postings.join(t_accounts, t_accounts.c.id == p.account_id))
            .where(p.transfer_id.in_(transfer_ids[start : start + 500]), p.amount_minor < 0)
        )
        found.update({tid: iban for tid, iban in rows})
    return found


def entries(
    conn: Connection,
    account_id: int,
    *,
    day: dt.date | None = None,
    references: Sequence[str] | None = None,
) -> list[Entry]:
    """The account's entries — its postings — booked on `day`, or belonging to the given
    transfers. A posting's details are the payments its transfer carries on this
    account's side: all of them on the debtor's one debit, those to this account on a
    creditor's credit (a batch credits each creditor account once)."""
    account_iban = conn.execute(
        select(t_accounts.c.iban).where(t_accounts.c.id == account_id)
    ).scalar_one()
    condition = [t_postings.c.account_id == account_id]
    if day is not None:
        condition.append(t_postings.c.booking_date == day)
    if references is not None:
        condition.append(t_transfers.c.reference.in_(list(references)))
    postings = conn.execute(
        select(
            t_postings.c.id,
            t_postings.c.transfer_id,
            t_postings.c.amount_minor,
            t_postings.c.currency,
            t_postings.c.booking_date,
            func.coalesce(t_postings.c.reference, t_transfers.c.reference).label("reference"),
            t_transfers.c.kind,
            t_transfers.c.value_date,
        )
        .select_from(t_postings.join(t_transfers, t_postings.c.transfer_id == t_transfers.c.id))
        .where(and_(*condition))
        .order_by(t_postings.c.id)
    ).all()
    details = _payments_by_transfer(conn, [p.reference for p in postings if p.kind != "funding"])
    funders = _funding_counterparty(
        conn, [p.transfer_id for p in postings if p.kind == "funding"]
    )
    return [_entry(posting, details, funders, account_iban) for posting in postings]


def _entry(
    posting: Any, details: dict[str, list[Any]], funders: dict[int, str], account_iban: str
) -> Entry:
    credit = posting.amount_minor > 0
    if posting.kind == "funding":
        code = FUNDING
        entry_details: tuple[EntryDetail, ...] = (
            EntryDetail(
                amount_minor=abs(posting.amount_minor),
                acct_svcr_ref=posting.reference,
                counterparty_name=TREASURY_NAME,
                counterparty_iban=funders.get(posting.transfer_id),
                remittance="Treasury funding",
            ),
        )
    else:
        rows = details.get(posting.reference, [])
        mine = [r for r in rows if (r.creditor_iban if credit else r.debtor_iban) == account_iban]
        entry_details = tuple(_detail(r, credit) for r in mine)
        codes = {d.bank_tx_code for d in entry_details if d.bank_tx_code is not None}
        # A batch of one kind of payment has its code; of several, each TxDtls has its own.
        code = next(iter(codes)) if len(codes) == 1 else SENT_MIXED
    return Entry(
        entry_ref=str(posting.id),
        amount_minor=abs(posting.amount_minor),
        currency=posting.currency,
        credit=credit,
        booking_date=posting.booking_date,
        value_date=posting.value_date,
        acct_svcr_ref=posting.reference,
        bank_tx_code=code,
        details=entry_details,
        batch_booked=len(entry_details) > 1,
    )


def balance_before(conn: Connection, account_id: int, day: dt.date) -> int:
    return int(
        conn.execute(
            select(func.coalesce(func.sum(t_postings.c.amount_minor), 0)).where(
                t_postings.c.account_id == account_id, t_postings.c.booking_date < day
            )
        ).scalar_one()
    )


# -- camt.053 ------------------------------------------------------------------------------


def _client_accounts(env: Environment) -> list[tuple[ClientSettings, str]]:
    return [(c, a.iban) for c in env.settings.clients for a in c.accounts]


def _day_bounds(env: Environment, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    zone = env.settings.timezone
    start = dt.datetime.combine(day, dt.time(0, 0), zone)
    return start, dt.datetime.combine(day, dt.time(23, 59, 59), zone)


def write_statements(env: Environment, day: dt.date) -> list[StatementResult]:
    """camt.053 for every client account for business day `day` (idempotent). An account
    whose statement for `day` would predate it or come after a later day's is left out,
    with its `Refusal`."""
    if not calendar.is_business_day(day):
        return [
            StatementResult(iban, day, False, None, f"{day} is not a business day")
            for _, iban in _client_accounts(env)
        ]
    results = []
    for client, iban in _client_accounts(env):
        try:
            with env.ledger.begin() as tx:
                results.append(_statement(env, tx.conn, client, iban, day))
        except _Refused as refused:  # rolled back, its number included
            results.append(refused.result)
    outbox.deliver_pending(env.engine.connect, env.spool, env.sealer, env.clock.now())
    for r in results:
        if r.written:
            log.info("statement.written", iban=r.iban, day=r.day.isoformat(), file=r.file_name)
    return results


def _statement(
    env: Environment, conn: Connection, client: ClientSettings, iban: str, day: dt.date
) -> StatementResult:
    s = db.statements.c
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
    day_entries = entries(conn, account.id, day=day)
    opening = balance_before(conn, account.id, day)
    closing = opening + sum(e.amount_minor if e.credit else -e.amount_minor for e in day_entries)
    previous = conn.execute(
        select(s.closing_minor)
        .where(s.iban == iban, s.message == STATEMENT, s.business_date < day)
        .order_by(s.business_date.desc())
        .limit(1)
    ).first()
    # Pair assertion: a day opens where the previous statement closed.
    assert previous is None or previous[0] == opening, (iban, day, previous, opening)
    local = env.local_now()
    msg_id = _msg_id(conn, local)
    start, end = _day_bounds(env, day)
    report = AccountReport(
        msg_id=msg_id,
        report_id=f"{day:%Y%m%d}-{sequence}",
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
    )
    outbox_id, name = _enqueue(conn, client.id, camt053_v02, report)
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
    return StatementResult(iban, day, True, name, f"{len(day_entries)} entries")


class _Refused(Exception):
    """A statement found out of order once its number was taken: the transaction rolls
    back, number and all."""

    def __init__(self, result: StatementResult) -> None:
        super().__init__(result.why)
        self.result = result


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
    if not empty_statements and not _moved(conn, account_id, day):
        return StatementResult(iban, day, False, None, "no movement (empty statements are off)")
    if stated:
        latest = max(stated)
        why = f"statements are written up to {latest}; {day} would be numbered after it"
        return StatementResult(iban, day, False, None, why, Refusal.OUT_OF_ORDER, latest)
    return None


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
    """Why `eod --date day` must write nothing, in one line, or None: some account has a
    later day stated already, or every account began after `day`."""
    late = [r for r in results if r is not None and r.refusal is Refusal.OUT_OF_ORDER]
    if late:
        latest = max(r.bound for r in late if r.bound is not None)
        return (
            f"not stated, and statements are written up to {latest} ({len(late)} "
            f"account(s), e.g. {late[0].iban}); {day} would be numbered after a later day"
        )
    early = [r for r in results if r is not None and r.refusal is Refusal.BEFORE_FIRST_DAY]
    if results and len(early) == len(results):
        firsts = [r.bound for r in early if r.bound is not None]
        since = f" ({min(firsts)})" if firsts else ""
        return f"before the accounts' first business day{since}: nothing to state"
    return None


def eod_refusal(env: Environment, day: dt.date) -> str | None:
    """`refusal_line` for business day `day` as things stand, read only: checked before
    `eod --date` writes anything."""
    ibans = [iban for _, iban in _client_accounts(env)]
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


def _msg_id(conn: Connection, local: dt.datetime) -> str:
    return answers.new_msg_id(conn, local)


def day_closed(env: Environment, day: dt.date) -> bool:
    """Whether `day` is over for booking: statements may be written for it."""
    local = env.local_now()
    return day < local.date() or (day == local.date() and local.time() >= env.settings.eod_time)


def run_due_eod(env: Environment) -> int:
    """The daemon's end of day: statements for the closed business days of the last
    `catch_up_business_days_max` that some account still lacks (a restart catches up),
    in date order. For each account only days from its first business day on and after
    its latest statement count: a missed day before a stated one stays unstated, since
    its number would come after that later day's."""
    local = env.local_now()
    day = local.date()
    days: list[dt.date] = []
    for _ in range(catch_up_business_days_max + 1):
        if calendar.is_business_day(day) and day_closed(env, day):
            days.append(day)
        day -= dt.timedelta(days=1)
    if not days:
        return 0
    ibans = [iban for _, iban in _client_accounts(env)]
    s = db.statements.c
    with env.engine.connect() as conn:
        ids = _account_ids(conn, ibans)
        latest: dict[str, dt.date] = dict(
            conn.execute(
                select(s.iban, func.max(s.business_date))
                .where(s.message == STATEMENT, s.iban.in_(ibans))
                .group_by(s.iban)
            ).all()
        )
        first = {iban: first_business_day(conn, iban, ids[iban]) for iban in ibans}
    due = [
        d
        for d in sorted(days)
        if any(
            (since := first[iban]) is not None
            and d >= since
            and (iban not in latest or d > latest[iban])
            for iban in ibans
        )
    ]
    written = 0
    for d in due:
        written += sum(r.written for r in write_statements(env, d))
    return written


# -- camt.052 and camt.054 -----------------------------------------------------------------


def intraday_report(env: Environment, iban: str) -> str:
    """camt.052 for an account now: opening balance, today's entries, interim balance."""
    owner = next((c for c, i in _client_accounts(env) if i == iban), None)
    if owner is None:
        raise UsageError(f"--iban {iban}: not a configured client account")
    local = env.local_now()
    today = local.date()
    with env.ledger.begin() as tx:
        conn = tx.conn
        account = conn.execute(select(t_accounts).where(t_accounts.c.iban == iban)).one()
        day_entries = entries(conn, account.id, day=today)
        opening = balance_before(conn, account.id, today)
        interim = opening + sum(
            e.amount_minor if e.credit else -e.amount_minor for e in day_entries
        )
        msg_id = _msg_id(conn, local)
        start, _ = _day_bounds(env, today)
        report = AccountReport(
            msg_id=msg_id,
            report_id=msg_id,
            created_at=local,
            electronic_seq_nb=counters.next_value(conn, f"report:{iban}"),
            iban=iban,
            currency=account.currency,
            owner_name=owner.name,
            servicer_bic=env.settings.bic,
            from_datetime=start,
            to_datetime=local,
            opening_minor=opening,
            closing_minor=interim,
            entries=day_entries,
        )
        _, name = _enqueue(conn, owner.id, camt052_v02, report)
    outbox.deliver_pending(env.engine.connect, env.spool, env.sealer, env.clock.now())
    return name


def notify(env: Environment, conn: Connection, references: Sequence[str]) -> list[str]:
    """camt.054 for the accounts of clients with `notifications = true` that the given
    transfers touched: one notification per account per execution run."""
    if not references:
        return []
    wanted = {c.id: c for c in env.settings.clients if c.notifications}
    if not wanted:
        return []
    touched = conn.execute(
        select(t_accounts.c.id, t_accounts.c.iban, t_accounts.c.owner, t_accounts.c.currency)
        .distinct()
        .select_from(
            t_postings.join(t_transfers, t_postings.c.transfer_id == t_transfers.c.id).join(
                t_accounts, t_accounts.c.id == t_postings.c.account_id
            )
        )
        .where(
            t_transfers.c.reference.in_(list(references)),
            t_accounts.c.kind == AccountKind.CLIENT.value,
            t_accounts.c.owner.in_(list(wanted)),
        )
    ).all()
    names = []
    local = env.local_now()
    for account_id, iban, owner, currency in touched:
        account_entries = entries(conn, account_id, references=references)
        if not account_entries:
            continue
        msg_id = _msg_id(conn, local)
        report = AccountReport(
            msg_id=msg_id,
            report_id=msg_id,
            created_at=local,
            electronic_seq_nb=counters.next_value(conn, f"notification:{iban}"),
            iban=iban,
            currency=currency,
            owner_name=wanted[owner].name,
            servicer_bic=env.settings.bic,
            from_datetime=local,
            to_datetime=local,
            entries=account_entries,
        )
        _, name = _enqueue(conn, owner, camt054_v02, report)
        names.append(name)
    return names



class _Writer(Protocol):
    MESSAGE: str

    def write(self, report: AccountReport, out: BinaryIO) -> None: ...


def _enqueue(
    conn: Connection, client_id: str, module: _Writer, report: AccountReport
) -> tuple[int, str]:
    """Render an account report with its message module and put it in the client's outbox."""
    body = outbox.render(lambda out: module.write(report, out))
    return outbox.enqueue(
        conn,
        client_id=client_id,
        message=module.MESSAGE,
        msg_id=report.msg_id,
        created_local=report.created_at,
        body=body,
    )
