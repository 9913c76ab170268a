"""Executing payments accepted as pending (future date, after cut-off) once they fall due.

Runs at the start of each business day in the daemon, and on every `scan --once`. The
due payments of each file are one more execution run of that file through the same
stages as its arrival, less what was settled then (rules, due dates): decide
(`decide.execute` against the accounts in memory), record (rows and transfers),
answer (a further pain.002 listing exactly those payments, and those that still wait
for another reason than the client was last told, and camt.054), all in the
transaction that books them.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from sqlalchemy import Select, literal_column, select

from gateway import announcements, db, large_days, record
from gateway.environment import Environment
from gateway.inbound import decide, rules
from gateway.inbound.decide import Waiting
from gateway.inbound.findings import Finding
from gateway.outbound import answers, reports
from gateway.reasons import Reason
from gateway.references import FileRefs
from gateway.statuses import TxStatus, derive
from ledger import calendar
from ledger.core import Account, AccountKind
from ledger.tx import LedgerTx

log = structlog.get_logger("gateway.pending")


def due_payments(today: dt.date) -> Select[Any]:
    """Pending payments due on or before `today`, in file order, found through the
    partial index `ix_gw_payments_pending` without touching the booked ones. The
    unary plus keeps SQLite from reading the whole table in file order through the
    unique index (to spare itself sorting the few pending rows)."""
    p = db.payments.c
    return (
        select(db.payments)
        .where(db.pending_only(), p.due_date <= today)
        .order_by(literal_column("+gw_payments.file_id"), p.seq)
        .with_for_update()  # a cancellation (camt.055) waits, then finds them executed
    )


def execute_due(env: Environment) -> list[int]:
    """Book every pending payment due today or earlier; returns the files reported on."""
    now = env.clock.now()
    local = now.astimezone(env.settings.timezone)
    today = local.date()
    if not calendar.is_business_day(today) or local.time() >= env.settings.eod_time:
        return []  # nothing is booked on a closed day
    reported: list[int] = []
    with env.ledger.begin() as tx:
        rows = tx.conn.execute(due_payments(today)).all()
        for file_id, file_rows in itertools.groupby(rows, key=lambda r: r.file_id):
            if _execute_file(env, tx, file_id, list(file_rows), now, local):
                reported.append(file_id)
    for file_id in reported:
        log.info("pending.executed", file_id=file_id, day=today.isoformat())
    return reported


def _orders(rows: Sequence[Any]) -> list[decide.Order]:
    """The payments of a file's pending rows, as decide takes them."""
    return [
        decide.Order(
            r.seq,
            r.pmt_seq,
            r.debtor_iban,
            r.creditor_iban,
            r.kind == "internal",
            r.amount_minor,
            r.currency,
            r.batch_booking,
            r.due_date,
            r.large_day_held_on is not None,
        )
        for r in rows
    ]


def _execute_file(
    env: Environment,
    tx: LedgerTx,
    file_id: int,
    rows: Sequence[Any],
    now: dt.datetime,
    local: dt.datetime,
) -> bool:
    """One more run of a file; whether it reported anything (a further pain.002)."""
    conn = tx.conn
    file_row = conn.execute(
        select(db.files).where(db.files.c.id == file_id).with_for_update()
    ).one()
    today = local.date()
    run = int(file_row.reports) + 1
    ibans = {r.debtor_iban for r in rows} | {r.creditor_iban for r in rows if r.kind == "internal"}
    accounts = tx.accounts(ibans | record.treasury_system_ibans(tx))
    clearing = {a.currency: i for i, a in accounts.items() if a.kind is AccountKind.CLEARING}
    book = decide.Book(accounts, record.debited_today(tx, accounts.values(), today))
    refs = FileRefs(file_row.client_id, file_row.sha256, file_id, run)
    bookings = decide.Bookings(refs, today, clearing, fx_wait_days=env.settings.fx_wait_days)
    if any(_needs_exchange(r, accounts) for r in rows):
        bookings.rates = record.day_rates(conn, today)
    if any(r.currency == large_days.CURRENCY for r in rows):
        bookings.gate = record.large_day_gate(conn, env.settings, file_row.client_id, today)
    results = _execute(_orders(rows), _served(env, file_row.client_id), book, bookings)
    record.post(tx, bookings.take_singles(), book, now)
    record.finish(tx, bookings.batches(), book, now)
    record.rates_used(conn, bookings.quotes)
    decided = [
        (r.id, _outcome(refs, r.seq, result, run, bookings.notes.get(r.seq), today))
        for r, result in zip(rows, results, strict=True)
        if not isinstance(result, decide.Waiting)
    ]
    # Held for a large-payment day: moved to a later day, and the client is told why.
    held = [
        (
            r.id,
            {
                "report_no": run,
                "additional_info": result.text,
                "due_date": result.due,
                "large_day_held_on": today,
            },
        )
        for r, result in zip(rows, results, strict=True)
        if isinstance(result, decide.Waiting) and result.due is not None
    ]
    # Still waiting, but why has changed (SPEC §6: a PDNG says why it waits): a payment
    # that waited for the rate valid on its due day now waits for today's, or one due
    # today finds no rate. Reported like any change, so that the client is not left with
    # an answer naming a rate that has since come.
    waiting = [
        (r.id, {"report_no": run, "additional_info": result.text})
        for r, result in zip(rows, results, strict=True)
        if isinstance(result, decide.Waiting)
        and result.due is None
        and result.text != r.additional_info
    ]
    record.update_payments(conn, decided + held + waiting)
    if not decided and not held and not waiting:
        return False  # all still wait as the client was told: nothing new to report
    announcements.refresh_days(conn, file_row.client_id, [file_id])
    reports.notify(env, conn, bookings.references)  # reads the rows just updated
    answers.issue_file_report(conn, file_row, local=local, bic=env.settings.bic, report_no=run)
    group = derive(answers.status_counts(conn, file_id))
    record.update_file(conn, file_id, reports=run, group_status=group.value)
    return True


def _served(env: Environment, client_id: str) -> tuple[frozenset[str], frozenset[str]]:
    """The accounts of the file's client in the configuration, and those of every client:
    an account taken out of it takes no payment, as at a file's first run (README)."""
    clients = env.settings.clients
    own = (a.iban for c in clients if c.id == client_id for a in c.accounts)
    return frozenset(own), frozenset(a.iban for c in clients for a in c.accounts)


def _execute(
    orders: Sequence[decide.Order],
    served: tuple[frozenset[str], frozenset[str]],
    book: decide.Book,
    bookings: decide.Bookings,
) -> list[Finding | str | Waiting]:
    """`decide.execute` of the orders whose accounts are still served (`_served`), in
    file order; the others refused as a new file's payment would be (AC02, AC01)."""
    own, every = served
    refused: list[Finding | None] = []
    for order in orders:
        if order.debtor_iban not in own:
            refused.append(Finding(Reason.AC02, rules.not_clients_account(order.debtor_iban)))
        elif order.internal and order.creditor_iban not in every:
            refused.append(Finding(Reason.AC01, rules.not_treasury_account(order.creditor_iban)))
        else:
            refused.append(None)
    kept = [order for order, found in zip(orders, refused, strict=True) if found is None]
    executed = iter(decide.execute(kept, book, bookings))
    return [found if found is not None else next(executed) for found in refused]


def _needs_exchange(row: Any, accounts: Mapping[str, Account]) -> bool:
    debtor = accounts.get(row.debtor_iban)
    creditor = accounts.get(row.creditor_iban) if row.kind == "internal" else None
    return any(a is not None and a.currency != row.currency for a in (debtor, creditor))


def _outcome(
    refs: FileRefs, seq: int, result: Finding | str, run: int, note: str | None,
    today: dt.date,
) -> dict[str, Any]:
    """What a pending payment's row says once its run has decided it. One executed is due
    the day it executed, which may be after the day it waited for (its rate came late, the
    daemon was down): that is the day its amount counts on (SPEC §14, `refresh_days`)."""
    if isinstance(result, Finding):
        return {
            "report_no": run,
            "status": TxStatus.RJCT.value,
            "reason": result.reason.value,
            "additional_info": result.short(),
        }
    return {
        "report_no": run,
        "status": TxStatus.ACSC.value,
        "due_date": today,
        "acct_svcr_ref": refs.payment_reference(seq),
        "transfer_ref": result,
        "additional_info": note,
    }
