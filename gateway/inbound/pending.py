"""Executing payments that were accepted as pending (future date, after cut-off) once due.

Runs at the start of each business day in the daemon, and on every `scan --once`.
Each file whose pending payments ran gets a further pain.002 listing exactly those
payments, written in the same transaction as their ledger effect.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import Select, literal_column, select, update

from gateway import db, statements
from gateway.environment import Environment
from gateway.inbound import answers
from gateway.inbound.booking import (
    Batch,
    Batched,
    Booker,
    batch_for,
    payment_key,
    payment_reference,
)
from gateway.inbound.execute import Due
from gateway.inbound.findings import Finding
from gateway.statuses import TxStatus, derive
from ledger import calendar
from ledger.core import AccountKind
from ledger.store import LedgerTx

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
            _execute_file(env, tx, file_id, list(file_rows), now, local)
            reported.append(file_id)
    for file_id in reported:
        log.info("pending.executed", file_id=file_id, day=today.isoformat())
    return reported


def _execute_file(
    env: Environment,
    tx: LedgerTx,
    file_id: int,
    rows: Sequence[Any],
    now: dt.datetime,
    local: dt.datetime,
) -> None:
    conn = tx.conn
    file_row = conn.execute(select(db.files).where(db.files.c.id == file_id)).one()
    today = local.date()
    report_no = int(file_row.reports) + 1
    clearing = {
        c: acct.iban
        for c in {r.currency for r in rows}
        if (acct := tx.system_account(AccountKind.CLEARING, c)) is not None
    }
    ibans = (
        {r.debtor_iban for r in rows}
        | {r.creditor_iban for r in rows if r.kind == "internal"}
        | set(clearing.values())
    )
    accounts = tx.accounts(ibans)
    by_id = tx.debits_on([a.id for a in accounts.values()], today)
    debited = {a.iban: by_id.get(a.id, 0) for a in accounts.values()}
    p = db.payments.c

    booker = Booker(tx, accounts, debited, today, now)
    items: list[Due | Batched] = []
    batches: dict[int, Batch] = {}
    for r in rows:
        internal = r.kind == "internal"
        credit = r.creditor_iban if internal else clearing[r.currency]
        if not internal and r.batch_booking:
            batch = batches.get(r.pmt_seq)
            if batch is None:
                batch = batches[r.pmt_seq] = batch_for(
                    file_row.client_id,
                    file_row.sha256,
                    file_id,
                    r.pmt_seq,
                    report_no,
                    debit_iban=r.debtor_iban,
                    credit_iban=credit,
                    currency=r.currency,
                )
            items.append(Batched(batch, r.amount_minor))
            continue
        due = Due(
            key=payment_key(file_row.client_id, file_row.sha256, r.seq),
            reference=payment_reference(file_id, r.seq),
            debtor_iban=r.debtor_iban,
            credit_iban=credit,
            amount_minor=r.amount_minor,
            currency=r.currency,
            internal=internal,
        )
        items.append(due)
    decisions = booker.book(items)
    booker.finish()
    for r, decision in zip(rows, decisions, strict=True):
        values: dict[str, Any] = {"report_no": report_no}
        if isinstance(decision, Finding):
            values.update(
                status=TxStatus.RJCT.value,
                reason=decision.reason.value,
                additional_info=decision.short(),
            )
        else:
            values.update(
                status=TxStatus.ACSC.value,
                acct_svcr_ref=payment_reference(file_id, r.seq),
                transfer_ref=decision,
            )
        conn.execute(update(db.payments).where(p.id == r.id).values(**values))
    statements.notify(env, conn, booker.references)  # reads the rows just updated
    answers.issue_file_report(
        conn,
        file_row,
        local=local,
        bic=env.settings.bic,
        report_no=report_no,
        original_ctrl_sum=None,
    )
    group = derive(answers.status_counts(conn, file_id))
    conn.execute(
        update(db.files)
        .where(db.files.c.id == file_id)
        .values(reports=report_no, group_status=group.value)
    )
