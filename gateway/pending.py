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
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import structlog
from sqlalchemy import Connection, Select, literal_column, select

from gateway import announcements, db, large_days, logs, metrics, progress, record
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


# What a run of due payments reads of each (`_orders`, `_needs_exchange`, `_execute_file`).
DUE_COLUMNS = (
    "id", "file_id", "seq", "pmt_seq", "debtor_iban", "creditor_iban", "kind", "amount_minor",
    "currency", "batch_booking", "due_date", "large_day_held_on", "additional_info",
)  # fmt: skip


def due_payments(
    today: dt.date, file_id: int | None = None, after: int = -1, limit: int | None = None
) -> Select[Any]:
    """Pending payments due on or before `today` (of `file_id`, after its position
    `after`, at most `limit`), in file order, found through the partial index
    `ix_gw_payments_pending` without touching the booked ones. The unary plus keeps
    SQLite from reading the whole table in file order through the unique index (to spare
    itself sorting the few pending rows)."""
    p = db.payments.c
    query = select(*(p[name] for name in DUE_COLUMNS)).where(  # what a run reads, no more
        db.pending_only(), p.due_date <= today
    )
    if file_id is not None:
        query = query.where(p.file_id == file_id, p.seq > after)
    return (
        query.order_by(literal_column("+gw_payments.file_id"), p.seq)
        .limit(limit)
        .with_for_update()  # a cancellation (camt.055) waits, then finds them executed
    )


# Due payments a run reads, decides and records at a time, so that a big file's run
# takes the memory of a chunk, not of the file.
chunk_payments = 20_000


def _due_chunks(conn: Connection, today: dt.date, file_id: int) -> Iterator[Sequence[Any]]:
    """The file's due payments, `chunk_payments` at a time in file order. A chunk's rows
    are decided and recorded before the next is read: none is read twice (the next begins
    after the last position read)."""
    after = -1
    while rows := conn.execute(due_payments(today, file_id, after, chunk_payments)).all():
        yield rows
        after = rows[-1].seq


def day_began(env: Environment, now: dt.datetime) -> dt.datetime | None:
    """When the business day of `now` began, its due payments with it (SPEC §6: "at the
    start of that business day"); None where nothing executes (a closed day, or past
    `eod_time`: the books of the day are closed)."""
    zone = env.settings.timezone
    local = now.astimezone(zone)
    if not calendar.booking_open(local, env.settings.eod_time):
        return None
    return dt.datetime.combine(local.date(), dt.time(0), zone)


def execute_due(
    env: Environment, now: dt.datetime, *, only: Sequence[str] | None = None,
    but: Sequence[str] = (),
) -> list[int]:
    """Book, as of `now`, every pending payment due that day or earlier — of the files of
    the clients `only` names, or of every client `but` those (a daemon's workers each run
    their own clients' due payments, the leader those of clients no longer configured too);
    returns the files reported on."""
    if day_began(env, now) is None:
        return []  # nothing is booked on a closed day
    local = now.astimezone(env.settings.timezone)
    today = local.date()
    reported: dict[int, _Ran] = {}
    p = db.payments.c
    whose = _of_clients(only, but)
    anyone = select(p.file_id).where(db.pending_only(), p.due_date <= today)
    due = whose(anyone)
    with env.engine.connect() as conn:  # a look first: most passes find nothing due, and a
        # writer would wait for the others; whose payments they are, only if some are
        if conn.execute(anyone.limit(1)).first() is None or (
            due is not anyone and conn.execute(due.limit(1)).first() is None
        ):
            return []
    started = time.monotonic()
    with env.ledger.begin() as tx:
        # PostgreSQL: every account the run may move is locked first, in id order, so that
        # files other workers book meanwhile from the same accounts wait for it and are the
        # ones done again. Unlocked, this long run found at its end that one of them had
        # debited an account it debits (`BalanceConflict`), backed off and tried again, and
        # lost again for as long as uploads kept coming (a tester: the payments due at the
        # start of the day waited until the uploads stopped). SPEC §6: they come first.
        tx.accounts(_moved_by_due(tx, today, whose), lock=True)
        files = tx.conn.execute(due.distinct()).scalars()
        for file_id in sorted(files):
            ran = _execute_file(env, tx, file_id, now, local)
            if ran.counts:
                reported[file_id] = ran
    duration_ms = round((time.monotonic() - started) * 1000, 1)  # the run's, all its files
    for file_id, ran in reported.items():
        metrics.payments_decided(ran.decided)
        log.info(
            "pending.executed", client=ran.client_id, file_id=file_id, msg_id=ran.msg_id,
            day=today.isoformat(), counts=dict(ran.counts), amounts=logs.amounts(ran.amounts),
            answer=ran.answer, duration_ms=duration_ms,
        )  # fmt: skip
    return list(reported)


class _Ran(NamedTuple):
    """What a file's run of its due payments reported (a further pain.002, `answer`): the
    payments' new statuses counted (none when nothing changed) and the amounts it executed
    per currency (as instructed)."""

    client_id: str
    msg_id: str | None
    counts: Counter[str]
    amounts: Counter[str]
    answer: str | None
    decided: list[metrics.PaymentTotal]  # those executed or refused (metrics)


def _count_decided(
    rows: Sequence[Any], results: Sequence[Finding | str | Waiting],
    into: dict[tuple[str, str | None], list[int]],
) -> None:
    """Add the payments of `rows` that their run executed or refused to `into`."""
    for row, result in zip(rows, results, strict=True):
        if not isinstance(result, Waiting):
            status = TxStatus.RJCT if isinstance(result, Finding) else TxStatus.ACSC
            kept = into.setdefault((status.value, row.currency), [0, 0])
            kept[0] += 1
            kept[1] += row.amount_minor or 0


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
    env: Environment, tx: LedgerTx, file_id: int, now: dt.datetime, local: dt.datetime
) -> _Ran:
    """One more run of a file, a chunk of its due payments at a time; what it reported."""
    conn = tx.conn
    today = local.date()
    # Locks in the order a cancellation takes them (camt.055, `cancel_run`): the payments
    # first, all of the file's due ones at once, then the file (the file first deadlocked
    # with a cancellation holding a payment of a later chunk).
    p = db.payments.c
    due = select(p.id).where(db.pending_only(), p.due_date <= today, p.file_id == file_id)
    total = sum(1 for _ in conn.execute(due.with_for_update()))  # each row read is locked
    file_row = conn.execute(
        select(db.files).where(db.files.c.id == file_id).with_for_update()
    ).one()
    shown = progress.FileProgress(  # `status` and `file.progress`, as for a file
        env.spool.root, file_row.client_id, f"{progress.DUE_PREFIX}{file_id}",
        f"{file_row.original_name} (its due payments)", total, env.clock,
    )  # fmt: skip
    try:
        return _run_file(env, tx, file_row, now, local, shown)
    finally:
        shown.close()


def _run_file(
    env: Environment, tx: LedgerTx, file_row: Any, now: dt.datetime, local: dt.datetime,
    shown: progress.FileProgress,
) -> _Ran:
    conn, file_id, today = tx.conn, file_row.id, local.date()
    run = int(file_row.reports) + 1
    system = tx.accounts(record.treasury_system_ibans(tx))
    clearing = {a.currency: i for i, a in system.items() if a.kind is AccountKind.CLEARING}
    book = decide.Book(system, record.debited_today(tx, system.values(), today))
    refs = FileRefs(file_row.client_id, file_row.sha256, file_id, run)
    bookings = decide.Bookings(refs, today, clearing, fx_wait_days=env.settings.fx_wait_days)
    served = (env.settings.served(file_row.client_id), env.settings.served())
    changed: Counter[str] = Counter()
    decided: dict[tuple[str, str | None], list[int]] = {}  # (status, currency): [count, sum]
    for rows in _due_chunks(conn, today, file_id):
        _take_accounts(tx, book, rows, today)
        if bookings.rates is None and any(_needs_exchange(r, book.accounts) for r in rows):
            bookings.rates = record.day_rates(conn, today)
        if bookings.gate is None and any(r.currency == large_days.CURRENCY for r in rows):
            bookings.gate = record.large_day_gate(conn, env.settings, file_row.client_id, today)
        results = _execute(_orders(rows), served, book, bookings)
        _count_decided(rows, results, decided)
        record.post(tx, bookings.take_singles(), book, now)
        updates = _updates(refs, rows, results, run, bookings.notes, today)
        record.update_payments(conn, updates)
        changed.update(values.get("status", TxStatus.PDNG.value) for _, values in updates)
        shown.advance(shown.done + len(rows))
    record.finish(tx, bookings.batches(), book, now)
    record.rates_used(conn, bookings.quotes)
    totals = [(status, code, n, total) for (status, code), (n, total) in decided.items()]
    ran = _Ran(file_row.client_id, file_row.msg_id, changed, bookings.booked, None, totals)
    if not changed:
        return ran  # all still wait as told: nothing new to report
    announcements.refresh_days(conn, file_row.client_id, [file_id])
    reports.notify(env, conn, bookings.references)  # reads the rows just updated
    _, answer = answers.issue_file_report(
        conn, file_row, local=local, bic=env.settings.bic, report_no=run
    )
    group = derive(answers.status_counts(conn, file_id))
    record.update_file(conn, file_id, reports=run, group_status=group.value)
    return ran._replace(answer=answer)


Whose = Callable[[Select[Any]], Select[Any]]  # a query of payments, to those of some clients


def _of_clients(only: Sequence[str] | None, but: Sequence[str]) -> Whose:
    """To the payments of the files of the clients `only` names, or of every client `but`:
    the pending rows (found through their partial index) joined to their files by key."""
    f = db.files.c
    if only is None and not but:
        return lambda query: query
    client = f.client_id.in_(only) if only is not None else f.client_id.not_in(but)
    return lambda query: query.join(db.files, f.id == db.payments.c.file_id).where(client)


def _moved_by_due(tx: LedgerTx, today: dt.date, whose: Whose) -> set[str]:
    """Every account the payments due by `today` (of `whose` files) may move: their
    debtors, their treasury creditors and the treasury's own accounts (clearing, positions)."""
    p = db.payments.c
    due = (db.pending_only(), p.due_date <= today)
    debtors = whose(select(p.debtor_iban).where(*due)).distinct()
    found = set(tx.conn.execute(debtors).scalars())
    internal = whose(select(p.creditor_iban).where(*due, p.kind == "internal")).distinct()
    found |= set(tx.conn.execute(internal).scalars())
    return {i for i in found if i} | set(record.treasury_system_ibans(tx))


def _take_accounts(tx: LedgerTx, book: decide.Book, rows: Sequence[Any], today: dt.date) -> None:
    """The accounts a chunk's payments move that the run has not read yet, into `book`
    with what each was debited today (none was moved by the run before)."""
    wanted = {r.debtor_iban for r in rows}
    wanted |= {r.creditor_iban for r in rows if r.kind == "internal"}
    found = tx.accounts(wanted - book.accounts.keys())
    book.add(found.values())
    book.debited.update(record.debited_today(tx, found.values(), today))


def _updates(
    refs: FileRefs, rows: Sequence[Any], results: Sequence[Finding | str | Waiting], run: int,
    notes: dict[int, str], today: dt.date,
) -> list[tuple[int, dict[str, Any]]]:
    """What the chunk's rows say once decided (`notes`: converted payments' AddtlInf,
    taken): executed or refused; held for a large-payment day — moved to a later day, the
    client told why; or still waiting, where why has changed (SPEC §6: a PDNG says why
    it waits — a payment that waited for the rate valid on its due day now waits for
    today's, or one due today finds no rate), reported like any change so that the
    client is not left with an answer naming a rate that has since come."""
    updates: list[tuple[int, dict[str, Any]]] = []
    for r, result in zip(rows, results, strict=True):
        if not isinstance(result, Waiting):
            note = notes.pop(r.seq, None)
            updates.append((r.id, _outcome(refs, r.seq, result, run, note, today)))
        elif result.due is not None:
            updates.append((r.id, {
                "report_no": run, "additional_info": result.text, "due_date": result.due,
                "large_day_held_on": today,
            }))  # fmt: skip
        elif result.text != r.additional_info:
            updates.append((r.id, {"report_no": run, "additional_info": result.text}))
    return updates


def _execute(
    orders: Sequence[decide.Order],
    served: tuple[frozenset[str], frozenset[str]],
    book: decide.Book,
    bookings: decide.Bookings,
) -> list[Finding | str | Waiting]:
    """`decide.execute` of the orders whose accounts are still served (`Settings.served`:
    the file's client's, everyone's), in
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
