"""Reading the books back: an account's entries of a day, its opening balance, and the
invariants every posting must keep — for audits, reconciliation and the tests that hold
the store to its model.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from ledger.core import AccountKind, TransferKind
from ledger.schema import account_days as t_account_days
from ledger.schema import accounts as t_accounts
from ledger.schema import postings as t_postings
from ledger.schema import transfers as t_transfers
from ledger.sums import exact_total, split_total
from ledger.tx import day_debits_kept_max


@dataclass(frozen=True, slots=True)
class Entry:
    """One posting on one account, with the transfer it belongs to."""

    transfer_id: int
    reference: str
    idempotency_key: str
    kind: TransferKind
    amount_minor: int  # signed: credit positive
    currency: str
    booking_date: dt.date
    value_date: dt.date
    counter_iban: str | None  # the other account of a two-legged transfer


def balance_before(engine: Engine, iban: str, day: dt.date) -> int:
    """Booked balance at the start of `day` (the sum of every earlier posting)."""
    with engine.connect() as conn:
        parts = conn.execute(
            select(*split_total(t_postings.c.amount_minor))
            .select_from(t_postings.join(t_accounts, t_postings.c.account_id == t_accounts.c.id))
            .where(t_accounts.c.iban == iban, t_postings.c.booking_date < day)
        ).one()
    return exact_total(*parts)


def entries(engine: Engine, iban: str, day: dt.date) -> list[Entry]:
    """The account's postings booked on `day`, in posting order."""
    with engine.connect() as conn:
        account_id = conn.execute(
            select(t_accounts.c.id).where(t_accounts.c.iban == iban)
        ).scalar_one_or_none()
    if account_id is None:
        raise KeyError(iban)
    p, t = t_postings.c, t_transfers.c
    query = (
        select(p.id, p.transfer_id, p.amount_minor, p.currency,
               func.coalesce(p.reference, t.reference).label("reference"),
               t.idempotency_key, t.kind, t.booking_date, t.value_date)
        .select_from(t_postings.join(t_transfers, p.transfer_id == t.id))
        .where(p.account_id == account_id, p.booking_date == day)
        .order_by(p.id)
    )  # fmt: skip
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        legs = _legs(conn, {r.transfer_id for r in rows})
    return [
        Entry(
            transfer_id=r.transfer_id,
            reference=r.reference,
            idempotency_key=r.idempotency_key,
            kind=TransferKind(r.kind),
            amount_minor=r.amount_minor,
            currency=r.currency,
            booking_date=r.booking_date,
            value_date=r.value_date,
            counter_iban=_counterpart(legs[r.transfer_id], r.id),
        )
        for r in rows
    ]


def _legs(conn: Connection, transfer_ids: set[int]) -> dict[int, list[tuple[int, str, Any]]]:
    """Every posting (id, account, reference) of the given transfers."""
    found: dict[int, list[tuple[int, str, Any]]] = defaultdict(list)
    p = t_postings.c
    ids = sorted(transfer_ids)
    for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
        rows = conn.execute(
            select(p.transfer_id, p.id, t_accounts.c.iban, p.reference)
            .select_from(t_postings.join(t_accounts, p.account_id == t_accounts.c.id))
            .where(p.transfer_id.in_(chunk))
        )
        for transfer_id, posting_id, iban, reference in rows:
            found[transfer_id].append((posting_id, iban, reference))
    return found


def check_references(conn: Connection) -> None:
    """Every posting names an account and a transfer that exist: the database does not
    check it row by row (`ledger/migrations/references.py`)."""
    p = t_postings.c
    orphan = conn.execute(
        select(p.id, p.account_id, p.transfer_id)
        .where(
            p.account_id.not_in(select(t_accounts.c.id))
            | p.transfer_id.not_in(select(t_transfers.c.id))
        )
        .limit(1)
    ).first()
    assert orphan is None, f"posting {orphan} names an account or transfer that is missing"


def check_invariants(engine: Engine) -> None:
    """Every posting names an account and a transfer that exist (`check_references`);
    postings sum to zero per currency, overall and per transfer; balances equal their
    postings; what each account was debited per day equals its debit postings."""
    with engine.connect() as conn:
        check_references(conn)
        per_currency = conn.execute(
            select(t_postings.c.currency, *split_total(t_postings.c.amount_minor)).group_by(
                t_postings.c.currency
            )
        ).all()
        assert all(exact_total(*parts) == 0 for _, *parts in per_currency), per_currency
        unbalanced = conn.execute(
            select(t_postings.c.transfer_id)
            .group_by(t_postings.c.transfer_id, t_postings.c.currency)
            .having(func.sum(t_postings.c.amount_minor) != 0)
            .limit(1)
        ).first()
        assert unbalanced is None, f"transfer {unbalanced} does not balance"
        sums = {
            account_id: exact_total(*parts)
            for account_id, *parts in conn.execute(
                select(t_postings.c.account_id, *split_total(t_postings.c.amount_minor)).group_by(
                    t_postings.c.account_id
                )
            )
        }
        for row in conn.execute(select(t_accounts)):
            assert row.balance_minor == sums.get(row.id, 0), (row.iban, row.balance_minor)
            if row.kind == AccountKind.CLIENT.value:
                assert row.balance_minor >= -row.overdraft_minor, row.iban
        p = t_postings.c
        debited = {
            (r[0], r[1]): min(exact_total(*r[2:]), day_debits_kept_max)
            for r in conn.execute(
                select(p.account_id, p.booking_date, *split_total(-p.amount_minor))
                .where(p.amount_minor < 0)
                .group_by(p.account_id, p.booking_date)
            )
        }
        kept = {(r[0], r[1]): int(r[2]) for r in conn.execute(select(t_account_days))}
        assert kept == debited, ("debits per account and day", kept, debited)


def _counterpart(legs: list[tuple[int, str, Any]], posting_id: int) -> str | None:
    """The other account of a posting's pair (its transfer's other leg of the same
    reference); None when there are several."""
    reference = next(r for pid, _, r in legs if pid == posting_id)
    others = [iban for pid, iban, r in legs if pid != posting_id and r == reference]
    return others[0] if len(others) == 1 else None
