"""The record stage: what a file's run decided, written into the database.

Runs inside the file's one database transaction (see `filerun.py`): the file's row,
its payments' rows (`gw_payments`, a chunk at a time), the ledger transfers the run
booked, and the look-ups the rules need before a chunk is decided (treasury
accounts, earlier payments for AM05). Nothing here decides anything.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from gateway import announcements, db, fx, large_days, pricing
from gateway.inbound.decide import Book, Decision
from gateway.inbound.facts import Facts
from gateway.inbound.intake import Intake
from gateway.inbound.parsed import ParsedTx
from gateway.inbound.rules import PaymentInfo
from gateway.settings import Settings
from gateway.statuses import TxStatus
from ledger import calendar, currency
from ledger.bulk import inserting
from ledger.core import Account, AccountKind, Transfer
from ledger.schema import accounts as t_accounts
from ledger.tx import LedgerTx

# The columns of a payment's row, in the order `payment_row` gives its values.
PAYMENT_COLUMNS = (
    "file_id", "seq", "pmt_seq", "pmt_inf_id", "msg_id", "batch_booking", "instr_id",
    "end_to_end_id", "debtor_iban", "debtor_name", "creditor_iban", "creditor_name",
    "creditor_bic", "amount_minor", "currency", "remittance", "remittance_structured",
    "requested_date", "due_date", "kind", "status", "reason", "additional_info",
    "acct_svcr_ref", "transfer_ref", "fingerprint", "report_no", "budget_codes",
    "large_day_held_on", "ultimate_debtor", "ultimate_creditor", "purpose",
)  # fmt: skip
assert set(PAYMENT_COLUMNS) == {c.name for c in db.payments.c} - {"id"}
# A row's values that `large_days.add_file_days` reads, in its order.
day_values = operator.itemgetter(*(PAYMENT_COLUMNS.index(n) for n in announcements.DAY_COLUMNS))
fingerprint_lookups_max = 2000  # above this, a file reads its accounts' whole AM05 window

# Statements every file runs, built once per process (SQLAlchemy keeps their compiled
# form; building one per call costs more than the database running it).
_f, _p = db.files.c, db.payments.c
_KNOWN_FILE = select(db.files).where(
    _f.client_id == bindparam("client_id"), _f.sha256 == bindparam("sha256")
)
_MSG_ID_USED = select(_f.id).where(
    _f.client_id == bindparam("client_id"), _f.accepted_msg_id == bindparam("msg_id")
)
_INSERT_FILE = insert(db.files).returning(_f.id)
_UPDATE_FILE = update(db.files).where(_f.id == bindparam("file_id_"))
_RECENT = [
    _p.status.in_([TxStatus.ACSC.value, TxStatus.PDNG.value]),
    _p.due_date >= bindparam("since"),
    _p.fingerprint.is_not(None),
    _p.file_id != bindparam("file_id"),
]
_RECENT_ALL = select(_p.fingerprint).where(
    _p.debtor_iban.in_(bindparam("debtors", expanding=True)), *_RECENT
)
# A fingerprint names its debtor account (`facts.fingerprint`), so asking by fingerprint
# needs no condition on the debtor, and a look-up costs the few rows it finds, however
# many payments the accounts' window holds. The fingerprints are written into the
# statement's text (integers only): PostgreSQL then plans each look-up with its values,
# never with the generic plan of a statement prepared while the table was nearly empty,
# which read the whole window through `ix_gw_payments_debtor_status`.
_RECENT_AMONG = select(_p.fingerprint).where(
    _p.fingerprint.in_(bindparam("prints", expanding=True, literal_execute=True)), *_RECENT
)


def payment_row(
    file_id: int, msg_id: str, tx: ParsedTx, pmt: PaymentInfo, facts: Facts, d: Decision
) -> list[Any]:
    """A payment's row as its file's first run leaves it (PAYMENT_COLUMNS order); a list,
    so that `inserting_payments` can adapt its values for the driver where they are."""
    parsed = pmt.parsed
    # Plain strings for the codes (`_value_`: `.value` is a descriptor call per payment): a
    # driver adapts an enum member value by value, slowly.
    return [
        file_id, tx.seq, tx.pmt_seq, parsed.pmt_inf_id, msg_id, pmt.batch_booking, tx.instr_id,
        tx.end_to_end_id, parsed.debtor_iban, parsed.debtor_name, tx.creditor_iban,
        tx.creditor_name, tx.creditor_bic, facts.amount_sent, tx.currency[:3] or None,
        tx.remittance, tx.remittance_structured, pmt.requested_date, d.due_date,
        "internal" if facts.internal else "external", d.status._value_,
        d.reason._value_ if d.reason is not None else None, d.info, d.acct_svcr_ref,
        d.transfer_ref, facts.fingerprint if d.status is not TxStatus.RJCT else None, 1,
        tx.codes if d.status is not TxStatus.RJCT else None, d.held_on,
        tx.ultimate_debtor or parsed.ultimate_debtor, tx.ultimate_creditor, tx.purpose,
    ]  # fmt: skip


def inserting_payments(conn: Connection, rows: Sequence[list[Any]]) -> AbstractContextManager[None]:
    """INSERT the rows of `payment_row` (adapted in place: they are not read again), the
    block running while the database finishes them (`bulk.inserting`)."""
    return inserting(
        conn, db.payments, PAYMENT_COLUMNS, rows, convert_in_place=True, leave_out_null_columns=True
    )


def post(tx: LedgerTx, transfers: Sequence[Transfer], book: Book, now: dt.datetime) -> None:
    tx.post(transfers, book.accounts, now)


def posting(
    tx: LedgerTx, transfers: Sequence[Transfer], book: Book, now: dt.datetime
) -> AbstractContextManager[dict[str, int]]:
    """`post`, the block running while the database finishes the postings."""
    return tx.posting(transfers, book.accounts, now)


def finish(tx: LedgerTx, transfers: Sequence[Transfer], book: Book, now: dt.datetime) -> None:
    """The run's last transfers, then the pair assertion: the ledger holds exactly the
    balances the run decided in memory."""
    tx.post(transfers, book.accounts, now)
    tx.assert_balances(book.state())


# -- the file's row --------------------------------------------------------------------------


def known_file(conn: Connection, intake: Intake) -> Any:
    """The row of a file with these bytes from this client, if any."""
    return conn.execute(
        _KNOWN_FILE, {"client_id": intake.client_id, "sha256": intake.sha256}
    ).first()


def msg_id_used(conn: Connection, client_id: str, msg_id: str) -> bool:
    found = conn.execute(_MSG_ID_USED, {"client_id": client_id, "msg_id": msg_id}).first()
    return found is not None


def insert_file(conn: Connection, intake: Intake, **values: Any) -> int:
    """The file's row (`values`: what is known of its content and its status)."""
    row = {
        "client_id": intake.client_id,
        "sha256": intake.sha256,
        "size_bytes": intake.size,
        "original_name": intake.original_name[:255],
        "received_at": intake.received,
        "processed_at": intake.now,
        "sftp_user": intake.user,
        "source_ip": intake.source_ip,
        "key_fingerprint": intake.key_fingerprint,
        "reports": 1,
        "claim_name": intake.claim_name,
        "nb_of_txs": 0,
        **values,
    }
    return int(conn.execute(_INSERT_FILE, row).scalar_one())


def update_payments(conn: Connection, updates: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
    """Later runs: each payment's row (by id) with the values its run decided, in one
    statement per set of columns changed, sent with all its rows (not a statement built
    per payment)."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for payment_id, values in updates:
        columns = tuple(sorted(values))
        params = {f"v_{name}": value for name, value in values.items()}
        by_columns.setdefault(columns, []).append({"payment_id_": payment_id, **params})
    for columns, rows in by_columns.items():
        conn.execute(_payment_update(columns), rows)


@lru_cache(maxsize=32)
def _payment_update(columns: tuple[str, ...]) -> Any:
    return (
        update(db.payments)
        .where(_p.id == bindparam("payment_id_"))
        .values({name: bindparam(f"v_{name}") for name in columns})
    )


def update_file(conn: Connection, file_id: int, **values: Any) -> None:
    conn.execute(_UPDATE_FILE, {"file_id_": file_id, **values})


# -- what the rules need to know -------------------------------------------------------------


def client_owns(settings: Settings, conn: Connection, client_id: str, iban: str) -> bool:
    """Whether `iban` is an account of the client's, in its configuration and its books."""
    client = next((c for c in settings.clients if c.id == client_id), None)
    if client is None or iban not in {a.iban for a in client.accounts}:
        return False
    owner = conn.execute(select(t_accounts.c.owner).where(t_accounts.c.iban == iban)).first()
    return owner is not None and owner[0] == client_id


def client_book(tx: LedgerTx, client_id: str, own: Mapping[str, str], today: dt.date) -> Book:
    """The client's own accounts (`own`: IBAN → currency) and the clearing and position
    accounts of every currency, with what each has been debited today (daily limits)."""
    clearing = treasury_system_ibans(tx)
    found = tx.accounts(set(own) | clearing)
    accounts = {
        i: a for i, a in found.items() if (i in own and a.owner == client_id) or i in clearing
    }
    return Book(accounts, debited_today(tx, accounts.values(), today))


def debited_today(tx: LedgerTx, accounts: Iterable[Account], day: dt.date) -> dict[str, int]:
    """What each account with a daily limit has been debited today (the others need not
    know)."""
    limited = [a for a in accounts if a.daily_limit_minor is not None]
    if not limited:
        return {}
    by_id = tx.debits_on([a.id for a in limited], day)
    return {a.iban: by_id.get(a.id, 0) for a in limited}


def treasury_accounts(tx: LedgerTx, ibans: Iterable[str]) -> dict[str, Account]:
    """The client accounts among `ibans`. Only client accounts take payments: the
    treasury's own funding and clearing accounts are not creditors a client can name."""
    return {i: a for i, a in tx.accounts(ibans).items() if a.kind is AccountKind.CLIENT}


def recent_fingerprints(
    conn: Connection,
    debtor_ibans: Sequence[str],
    since: dt.date,
    candidates: Sequence[int] | None,
    file_id: int,
) -> set[int]:
    """Payments from these accounts booked since `since`, or accepted and still waiting,
    in files other than `file_id` (AM05).

    A small file asks about its own payments; a big one reads the accounts' window
    at once (cheaper than thousands of look-ups)."""
    params: dict[str, Any] = {"since": since, "file_id": file_id}
    if candidates is None:
        params["debtors"] = list(debtor_ibans)
        return {r[0] for r in conn.execute(_RECENT_ALL, params)}
    found: set[int] = set()
    for start in range(0, len(candidates), 500):
        chunk = list(candidates[start : start + 500])
        found.update(r[0] for r in conn.execute(_RECENT_AMONG, {**params, "prints": chunk}))
    return found


def clearing_by_currency(book: Book) -> Mapping[str, str]:
    return {a.currency: a.iban for a in book.accounts.values() if a.kind is AccountKind.CLEARING}


# -- exchange (SPEC §13) ---------------------------------------------------------------------


def treasury_system_ibans(tx: LedgerTx) -> set[str]:
    """The clearing and position accounts of every currency: a payment may be made in
    any of them (converted through the position accounts)."""
    clearing = (tx.system_iban(AccountKind.CLEARING, c) for c in currency.EXPONENTS)
    return {i for i in clearing if i is not None} | set(pricing.position_ibans().values())


def day_rates(conn: Connection, day: dt.date) -> fx.DayRates:
    """The exchange rates valid for execution on `day`."""
    from gateway.rates import store

    return store.rates_for_day(conn, day)


def rates_used(conn: Connection, quotes: Iterable[fx.Quote]) -> None:
    """Mark the rates the run converted with as used (they never change again)."""
    if quotes:
        from gateway.rates import store

        store.mark_used(conn, quotes)


def large_day_gate(
    conn: Connection, settings: Settings, client_id: str, day: dt.date
) -> large_days.Gate | None:
    """The large-payment-day gate (SPEC §14) of the client for `day`; None when nothing
    is booked that day anyway."""
    if not calendar.is_business_day(day):
        return None
    return announcements.gate(
        conn, client_id, day, threshold_minor=settings.large_day_threshold_minor,
        announce_by=settings.large_day_announce_by, timezone=settings.timezone,
    )  # fmt: skip


def payment_infos(conn: Connection, file_id: int, ctrl_sums: Mapping[int, str]) -> None:
    """Each payment information's CtrlSum as its answers echo it (`gw_payment_infos`, by
    its position in the file): a row per payment information that had one, none per
    payment; the follow-up reports read them (`answers.build_file_report`)."""
    if ctrl_sums:
        rows = [{"file_id": file_id, "pmt_seq": seq, "ctrl_sum": text}
                for seq, text in ctrl_sums.items()]  # fmt: skip
        conn.execute(insert(db.payment_infos), rows)
