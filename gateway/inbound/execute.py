"""Execution: deciding, in order, which due payments the ledger can book (pure).

A payment is judged here at the moment it executes — when its file arrives, or
later when a pending payment falls due: daily limit (AM14) first, then the
ledger's own check (funds AM04, account status AC04/AC06). The caller holds the
account locks and writes what this returns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from gateway.inbound.findings import Finding
from gateway.reasons import Reason
from ledger import core, currency
from ledger.core import Account, Refusal, TransferKind, TransferRequest


class Due(NamedTuple):
    """A payment to execute now."""

    key: str  # idempotency key: file bytes + position
    reference: str  # AcctSvcrRef
    debtor_iban: str
    credit_iban: str  # the treasury creditor, or the clearing account of the currency
    amount_minor: int
    currency: str
    internal: bool


REFUSAL_REASONS: dict[Refusal, Reason] = {
    Refusal.UNKNOWN_ACCOUNT: Reason.AC01,
    Refusal.CURRENCY_MISMATCH: Reason.AM03,
    Refusal.DEBIT_CLOSED: Reason.AC04,
    Refusal.CREDIT_CLOSED: Reason.AC04,
    Refusal.DEBIT_BLOCKED: Reason.AC06,
    Refusal.CREDIT_BLOCKED: Reason.AC06,
    Refusal.INSUFFICIENT_FUNDS: Reason.AM04,
    Refusal.NOT_POSITIVE: Reason.AM12,
}


def _refusal_info(refusal: Refusal, due: Due, accounts: dict[str, Account]) -> str:
    amount = currency.format_minor(due.amount_minor, due.currency)
    if refusal is Refusal.INSUFFICIENT_FUNDS:
        return f"InstdAmt {amount} {due.currency}: insufficient funds on {due.debtor_iban}"
    if refusal in (Refusal.CREDIT_CLOSED, Refusal.CREDIT_BLOCKED):
        return f"CdtrAcct {due.credit_iban} is {accounts[due.credit_iban].status}"
    if refusal in (Refusal.DEBIT_CLOSED, Refusal.DEBIT_BLOCKED):
        return f"DbtrAcct {due.debtor_iban} is {accounts[due.debtor_iban].status}"
    return f"cannot book {amount} {due.currency}: {refusal.value}"


def _over_limit(due: Due, limit: int) -> Finding:
    return Finding(
        Reason.AM14,
        f"InstdAmt {currency.format_minor(due.amount_minor, due.currency)} exceeds "
        f"what is left of the daily limit {currency.format_minor(limit, due.currency)} "
        f"on {due.debtor_iban}",
    )


def execute(
    dues: Iterable[Due],
    accounts: dict[str, Account],
    debited_today: dict[str, int],
    booking_date: dt.date,
) -> Iterator[tuple[Due, TransferRequest | None, Finding | None]]:
    """For each due payment in order: the transfer to post, or the finding that stops it.

    `accounts` and `debited_today` are updated as transfers are accepted, so each
    decision sees the effect of the ones before it (as the ledger will).
    """
    for due in dues:
        debtor = accounts.get(due.debtor_iban)
        limit = debtor.daily_limit_minor if debtor is not None else None
        spent = debited_today.get(due.debtor_iban, 0)
        if limit is not None and spent + due.amount_minor > limit:
            yield due, None, _over_limit(due, limit)
            continue
        request = TransferRequest(
            idempotency_key=due.key,
            reference=due.reference,
            kind=TransferKind.INTERNAL if due.internal else TransferKind.EXTERNAL,
            debit_iban=due.debtor_iban,
            credit_iban=due.credit_iban,
            currency=due.currency,
            amount_minor=due.amount_minor,
            booking_date=booking_date,
            value_date=booking_date,
        )
        refusal = core.apply(request, accounts)
        if refusal is not None:
            yield (
                due,
                None,
                Finding(REFUSAL_REASONS[refusal], _refusal_info(refusal, due, accounts)),
            )
            continue
        debited_today[due.debtor_iban] = spent + due.amount_minor
        yield due, request, None


def execute_batch(
    debtor_iban: str,
    credit_iban: str,
    currency_code: str,
    amounts: Sequence[int],
    accounts: dict[str, Account],
    debited_today: dict[str, int],
) -> list[Finding | None]:
    """The payments (`amounts`) of one batch transfer from `debtor_iban` to
    `credit_iban`, decided in order exactly as `execute` decides them one at a time (a
    test holds the two equal), with the balances moved once at the end: None for a
    payment that fits, else the finding that stops it. A batch's payments become one
    transfer (`booking.Booker`), so no transfer is built per payment here."""
    debtor = accounts.get(debtor_iban)
    credit = accounts.get(credit_iban)
    limit = debtor.daily_limit_minor if debtor is not None else None
    spent = debited_today.get(debtor_iban)
    # `core.apply` moves nothing when an account pays itself.
    moves = debtor is not None and credit is not None and debtor.iban != credit.iban
    moved = 0
    findings: list[Finding | None] = []
    refusal_of = core.refusal
    for amount in amounts:
        if limit is not None and (spent or 0) + amount > limit:
            due = _due(debtor_iban, credit_iban, currency_code, amount)
            findings.append(_over_limit(due, limit))
            continue
        available = debtor.available_after(-moved) if debtor is not None else None
        refusal = refusal_of(debtor, credit, currency_code, amount, available)
        if refusal is not None:
            due = _due(debtor_iban, credit_iban, currency_code, amount)
            info = _refusal_info(refusal, due, accounts)
            findings.append(Finding(REFUSAL_REASONS[refusal], info))
            continue
        if moves:
            moved += amount
        spent = (spent or 0) + amount
        findings.append(None)
    if moved:
        assert debtor is not None and credit is not None
        accounts[debtor.iban] = debtor.moved(-moved)
        accounts[credit.iban] = credit.moved(moved)
    if spent is not None:
        debited_today[debtor_iban] = spent
    return findings


def _due(debtor_iban: str, credit_iban: str, currency_code: str, amount: int) -> Due:
    """A batch's payment as a `Due`, for the wording of a finding against it."""
    return Due("", "", debtor_iban, credit_iban, amount, currency_code, internal=False)
